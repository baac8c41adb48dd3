"""A real `pulumi up` / no-op up / `destroy` against the local cluster, with nothing downloaded."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from localdev.cluster import LocalCluster
from localdev.pulumi import PulumiWorkspace
from localdev.tools import REPO

PROGRAM = """
import pulumi
import pulumi_kubernetes as k8s

namespace = pulumi.Config().require("namespace")
config_map = k8s.core.v1.ConfigMap(
    "smoke",
    metadata={"name": "pulumi-smoke", "namespace": namespace},
    data={"greeting": "hello"},
)
pulumi.export("name", config_map.metadata["name"])
"""


def test_configmap_up_noop_destroy(
    pulumi_workspace: PulumiWorkspace, cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    project = tmp_path / "smoke"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(
        textwrap.dedent(f"""
        name: smoke
        runtime:
          name: python
          options:
            virtualenv: {REPO / ".venv"}
    """)
    )
    (project / "__main__.py").write_text(PROGRAM)

    pulumi_workspace.run("stack", "init", "smoke", cwd=project)
    pulumi_workspace.run("config", "set", "namespace", namespace, cwd=project)
    pulumi_workspace.run("up", "--yes", "--skip-preview", cwd=project)

    data = cluster.kubectl(
        "get", "-n", namespace, "configmap/pulumi-smoke", "-o", "jsonpath={.data.greeting}"
    )
    assert data.stdout == "hello"
    assert json.loads(pulumi_workspace.run("stack", "output", "--json", cwd=project).stdout) == {
        "name": "pulumi-smoke"
    }

    # A second run with nothing changed must change nothing.
    preview = pulumi_workspace.run("preview", "--expect-no-changes", "--json", cwd=project)
    steps = json.loads(preview.stdout)["steps"]
    assert {step["op"] for step in steps} == {"same"}
    second = pulumi_workspace.run("up", "--yes", "--skip-preview", "--expect-no-changes", cwd=project)
    assert "unchanged" in second.stdout

    pulumi_workspace.run("destroy", "--yes", "--skip-preview", cwd=project)
    gone = cluster.kubectl("get", "-n", namespace, "configmap/pulumi-smoke", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr

    # Nothing was downloaded: no plugin was installed into PULUMI_HOME.
    plugins = pulumi_workspace.plugins_dir
    assert not plugins.exists() or not any(plugins.iterdir())
    pulumi_workspace.run("stack", "rm", "--yes", cwd=project)
