"""Node-RED: flow-based data input. Its flows come from a ConfigMap mounted at /data/flows.json, its settings
from another at /data/settings.js: the editor and its admin API need a login (`adminAuth`), the user and
password from this component's Secret `nodered-admin`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ANYWHERE,
    ENV_SECRET_SKIP,
    FIXED_UID_SKIPS,
    MEDIUM,
    OPEN_SERVER_SKIP,
    THIRD_PARTY_IMAGE_SKIPS,
    Placement,
    Resources,
    Workload,
    baseline_security_context,
    check_dns_label,
    child_options,
    config_map_volume,
    credentials_secret,
    deployment,
    empty_dir,
    http_probe,
    meta,
    mount,
    secret_env,
    service,
    service_port,
)

PORT = 1880
SERVICE_PORT = 80
NODE_RED_UID = 1000  # the image's node-red user

# Node-RED's settings file. adminAuth with our own check (Node-RED's documented custom authentication):
# the password stays in the Secret, never hashed into a ConfigMap, and is compared in constant time.
SETTINGS_JS = """// Written by the dtpoc platform (components/nodered.py).
const crypto = require("crypto");
const USER = process.env.NODE_RED_ADMIN_USER || "";
const PASSWORD = process.env.NODE_RED_ADMIN_PASSWORD || "";

function same(given, expected) {
  const a = crypto.createHash("sha256").update(String(given)).digest();
  const b = crypto.createHash("sha256").update(String(expected)).digest();
  return crypto.timingSafeEqual(a, b);
}

module.exports = {
  uiPort: process.env.PORT || 1880,
  flowFile: "flows.json",
  adminAuth: {
    type: "credentials",
    users: function (username) {
      return Promise.resolve(USER !== "" && username === USER ? { username: USER, permissions: "*" } : null);
    },
    authenticate: function (username, password) {
      const ok = USER !== "" && PASSWORD !== "" && same(username, USER) && same(password, PASSWORD);
      return Promise.resolve(ok ? { username: USER, permissions: "*" } : null);
    },
  },
  editorTheme: { projects: { enabled: false } },
  logging: { console: { level: "info", metrics: false, audit: false } },
};
"""

# The seed's starter flow (one tab, an inject node wired to a debug node), and a second tab that follows
# the sensors' live readings from the in-cluster broker (anonymous clients may read). Both debug nodes also
# write to the log, so a running flow shows in `kubectl logs`.
BROKER_HOST = "mosquitto"
SENSOR_TOPIC = "CamDT/DC1/IfM/#"


def _debug(node_id: str, tab: str, name: str, complete: str, y: int) -> dict:
    return {
        "id": node_id,
        "type": "debug",
        "z": tab,
        "name": name,
        "active": True,
        "tosidebar": True,
        "console": True,
        "tostatus": False,
        "complete": complete,
        "targetType": "msg" if complete != "false" else "none",
        "statusVal": "",
        "statusType": "auto",
        "x": 460,
        "y": y,
        "wires": [],
    }


DEFAULT_FLOWS: list[dict] = [
    {"id": "flow1", "type": "tab", "label": "Flow 1", "disabled": False, "info": ""},
    {
        "id": "inject1",
        "type": "inject",
        "z": "flow1",
        "name": "",
        "props": [{"p": "payload"}, {"p": "topic", "vt": "str"}],
        "repeat": "",
        "crontab": "",
        "once": True,
        "onceDelay": 0.1,
        "topic": "",
        "payload": "Hello, World!",
        "payloadType": "str",
        "x": 200,
        "y": 100,
        "wires": [["debug1"]],
    },
    _debug("debug1", "flow1", "", "false", 100),
    {"id": "sensors", "type": "tab", "label": "Sensors", "disabled": False, "info": "Live sensor readings"},
    {
        "id": "broker",
        "type": "mqtt-broker",
        "name": "platform broker",
        "broker": BROKER_HOST,
        "port": "1883",
        "clientid": "",
        "autoConnect": True,
        "usetls": False,
        "protocolVersion": "4",
        "keepalive": "60",
        "cleansession": True,
    },
    {
        "id": "readings",
        "type": "mqtt in",
        "z": "sensors",
        "name": "sensor readings",
        "topic": SENSOR_TOPIC,
        "qos": "1",
        "datatype": "json",
        "broker": "broker",
        "nl": False,
        "rap": True,
        "rh": 0,
        "inputs": 0,
        "x": 200,
        "y": 100,
        "wires": [["sample"]],
    },
    {
        # At most one reading a second to the log, however many arrive (the rest are dropped here only).
        "id": "sample",
        "type": "delay",
        "z": "sensors",
        "name": "one a second",
        "pauseType": "rate",
        "timeout": "5",
        "timeoutUnits": "seconds",
        "rate": "1",
        "nbRateUnits": "1",
        "rateUnits": "second",
        "randomFirst": "1",
        "randomLast": "5",
        "randomUnits": "seconds",
        "drop": True,
        "allowrate": False,
        "outputs": 1,
        "x": 310,
        "y": 100,
        "wires": [["reading"]],
    },
    _debug("reading", "sensors", "reading", "payload", 100),
]


@dataclass(frozen=True)
class NodeRedArgs:
    """`flows_json`: the flows file's content (a JSON list); the seed's starter flow by default.
    `admin_password`: a Pulumi secret, the editor's login with `admin_username`."""

    namespace: str
    admin_password: pulumi.Input[str]
    admin_username: str = "admin"
    flows_json: str = json.dumps(DEFAULT_FLOWS, indent=2)
    image: str = "nodered/node-red:4.0"
    service_name: str = "nodered"
    resources: Resources = MEDIUM
    placement: Placement = ANYWHERE

    def __post_init__(self) -> None:
        check_dns_label(self.service_name, "NodeRedArgs.service_name")
        if isinstance(self.admin_password, str):
            raise ValueError("NodeRedArgs.admin_password must be a Pulumi secret Output, not a plain string")
        if not self.admin_username:
            raise ValueError("NodeRedArgs.admin_username must not be empty")
        try:
            flows = json.loads(self.flows_json)
        except json.JSONDecodeError as e:
            raise ValueError(f"NodeRedArgs.flows_json is not valid JSON: {e}") from e
        if not isinstance(flows, list):
            raise ValueError("NodeRedArgs.flows_json must be a JSON list of nodes")


class NodeRed(pulumi.ComponentResource):
    """ConfigMaps `nodered-flows`, `nodered-settings`, Secret `nodered-admin`, Deployment `nodered`, Service
    `nodered:80` -> 1880."""

    service_name: pulumi.Output[str]

    def __init__(self, name: str, args: NodeRedArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:nodered:NodeRed", name, None, opts)
        child = child_options(self, opts)
        app, component = "nodered", "data-input"

        self.flows = k8s.core.v1.ConfigMap(
            f"{name}-flows",
            metadata=meta("nodered-flows", args.namespace, component, app=app),
            data={"flows.json": args.flows_json},
            opts=child,
        )
        self.settings = k8s.core.v1.ConfigMap(
            f"{name}-settings",
            metadata=meta("nodered-settings", args.namespace, component, app=app),
            data={"settings.js": SETTINGS_JS},
            opts=child,
        )
        self.admin_secret = credentials_secret(
            f"{name}-admin",
            meta("nodered-admin", args.namespace, component, app=app),
            args.admin_username,
            args.admin_password,
            child,
        )
        w = Workload(
            app=app,
            component=component,
            namespace=args.namespace,
            service_name=args.service_name,
            policy_skips={
                **THIRD_PARTY_IMAGE_SKIPS,
                **FIXED_UID_SKIPS,
                "CKV2_K8S_6": OPEN_SERVER_SKIP,
                "CKV_K8S_35": ENV_SECRET_SKIP,
            },
            fs_group=NODE_RED_UID,
            container=k8s.core.v1.ContainerArgs(
                name="nodered",
                image=args.image,
                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                env=[
                    secret_env("NODE_RED_ADMIN_USER", self.admin_secret.metadata.name, "username"),
                    secret_env("NODE_RED_ADMIN_PASSWORD", self.admin_secret.metadata.name, "password"),
                ],
                # /data must be writable (Node-RED keeps its settings and credentials there); the flows
                # file is mounted on top of it from the ConfigMap.
                volume_mounts=[
                    mount("data", "/data"),
                    mount("flows", "/data/flows.json", sub_path="flows.json"),
                    mount("settings", "/data/settings.js", sub_path="settings.js", read_only=True),
                ],
                liveness_probe=http_probe("/", PORT, initial_delay=20, period=20),
                readiness_probe=http_probe("/", PORT, initial_delay=5, period=10),
                resources=args.resources.args(),
                security_context=baseline_security_context(run_as_user=NODE_RED_UID),
            ),
            volumes=[
                empty_dir("data"),
                config_map_volume("flows", self.flows.metadata.name),
                config_map_volume("settings", self.settings.metadata.name),
            ],
            service_ports=[service_port(SERVICE_PORT, PORT)],
            placement=args.placement,
        )
        self.deployment = deployment(f"{name}-deployment", w, child)
        self.service = service(f"{name}-service", w, child)
        self.service_name = self.service.metadata.name
        self.register_outputs({"service_name": self.service_name})
