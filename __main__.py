"""The dtpoc platform: one Pulumi program per environment (`pulumi up --stack <env>`).

Only composition here: the configuration is read once (components/config.py), the platform is built from it
(components/platform.py), and the useful facts become stack outputs.
"""

import pulumi

from components.config import PlatformConfig
from components.platform import Platform, PlatformArgs

config = PlatformConfig.load()
platform = Platform("dtpoc", PlatformArgs(config=config))

pulumi.export("namespace", platform.namespace)
pulumi.export("urls", platform.urls)
pulumi.export("services", platform.services)
pulumi.export("crd", platform.orchestrator.crd_name)
pulumi.export("apiTokenSecret", platform.orchestrator.api_token_secret_name)
pulumi.export("apiReadTokenSecret", platform.orchestrator.api_read_token_secret_name)
if platform.solutions:  # DT solutions besides the platform's namespace: name -> namespace
    pulumi.export("solutions", {name: solution.namespace for name, solution in platform.solutions.items()})
# Every image the workloads use from the program: the built ones (by key) and the operator's and API's.
pulumi.export(
    "images",
    {**platform.images.refs, "operator": platform.images.operator_ref, "api": platform.images.api_ref},
)
