"""A certificate made by the program (`tlsSelfSigned: true`): a self-signed certificate for the stack's hosts
in a `kubernetes.io/tls` Secret, for stacks without a certificate of their own (dev, a lab network).

The key and certificate are made once by a Pulumi dynamic provider (Python, so no provider plugin to
install) and kept, encrypted, in the stack's state: a second `pulumi up` changes nothing; a change of hosts
or lifetime makes a new pair. Browsers warn about a self-signed certificate; for a public host, give a
Secret made by cert-manager or your CA instead (`tlsSecretName`).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic
import pulumi_kubernetes as k8s

from .common import check_dns_label, child_options, meta


def self_signed_pem(hosts: Sequence[str], days: int) -> tuple[str, str]:
    """(certificate, private key), PEM: an ECDSA P-256 key and a certificate for `hosts` (SANs)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


class _CertificateProvider(pulumi.dynamic.ResourceProvider):
    """Makes the pair on create; a change of `hosts` or `days` replaces it, nothing else touches it."""

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        certificate, private_key = self_signed_pem(props["hosts"], int(props["days"]))
        digest = hashlib.sha256(certificate.encode()).hexdigest()[:16]
        outs = {"hosts": props["hosts"], "days": props["days"], "certificate": certificate}
        return pulumi.dynamic.CreateResult(id_=digest, outs={**outs, "private_key": private_key})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = [key for key in ("hosts", "days") if olds.get(key) != news.get(key)]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=changed)


class _CertificateMaterial(pulumi.dynamic.Resource):
    certificate: pulumi.Output[str]
    private_key: pulumi.Output[str]

    def __init__(self, name: str, hosts: Sequence[str], days: int, opts: pulumi.ResourceOptions) -> None:
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["private_key"])
        )
        props = {"hosts": list(hosts), "days": days, "certificate": None, "private_key": None}
        super().__init__(_CertificateProvider(), name, props, opts)


@dataclass(frozen=True)
class SelfSignedCertificateArgs:
    namespace: str
    hosts: Sequence[str]
    secret_name: str = "dtpoc-tls"  # noqa: S105 (a name, not a value)
    days: int = 365

    def __post_init__(self) -> None:
        check_dns_label(self.secret_name, "SelfSignedCertificateArgs.secret_name")
        if not self.hosts:
            raise ValueError("SelfSignedCertificateArgs.hosts: a certificate needs at least one host name")
        if not 1 <= self.days <= 825:
            raise ValueError(f"SelfSignedCertificateArgs.days must be 1..825, got {self.days}")


class SelfSignedCertificate(pulumi.ComponentResource):
    """A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) for `hosts`. Output: `secret_name`."""

    secret_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: SelfSignedCertificateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dtpoc:tls:SelfSignedCertificate", name, None, opts)
        child = child_options(self, opts)
        material = _CertificateMaterial(f"{name}-material", args.hosts, args.days, child)
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=meta(args.secret_name, args.namespace, "ingress", app="dtpoc-tls"),
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": material.certificate,
                "tls.key": pulumi.Output.secret(material.private_key),
            },
            opts=child,
        )
        self.secret_name = self.secret.metadata.name
        self.register_outputs({"secret_name": self.secret_name})
