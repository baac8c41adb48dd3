"""A FROM-scratch OCI image tarball holding one static binary: the pause image (containerd's sandbox
image) and busybox for the node's own tests; no base image can be pulled here. Standard library only:
tools/build.sh runs it before the project's virtualenv exists.

    python3 -m localdev.oci --binary bin/pause --entrypoint /pause --ref localhost/x:1 --out x.tar
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _blob(tar: tarfile.TarFile, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    _add(tar, f"blobs/sha256/{digest}", data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def write_image(
    binary: Path, entrypoint: str, ref: str, out: Path, user: str = "65535:65535", links: tuple[str, ...] = ()
) -> Path:
    """`links`: further paths in the image that are symlinks to the binary (a multi-call binary's applets)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        _add(tar, entrypoint.lstrip("/"), binary.read_bytes(), mode=0o755)
        for link in links:
            info = tarfile.TarInfo(link.lstrip("/"))
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, entrypoint, 0o777
            tar.addfile(info)
    layer_bytes = layer.getvalue()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": [entrypoint], "User": user},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"]},
    }
    with tarfile.open(out, mode="w") as tar:
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": _blob(tar, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
            "layers": [_blob(tar, layer_bytes, "application/vnd.oci.image.layer.v1.tar")],
        }
        descriptor = _blob(tar, json.dumps(manifest).encode(), str(manifest["mediaType"]))
        descriptor["annotations"] = {
            "io.containerd.image.name": ref,
            "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1],
        }
        _add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": [descriptor]}).encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--entrypoint", required=True, help="absolute path of the binary in the image")
    parser.add_argument("--ref", required=True, help="the image name containerd records")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    write_image(Path(args.binary), args.entrypoint, args.ref, Path(args.out))


if __name__ == "__main__":
    main()
