"""A sensor simulator: realistic light, temperature and CO2 readings published over MQTT in the seed
system's topic and JSON shape, so that the platform (Telegraf's json_v2 inputs, Node-RED) shows live data.

Each device publishes one JSON object per round to `<TOPIC_PREFIX>/<kind>/<machine>` at QoS 1:

    CamDT/DC1/IfM/light/light-1  {"machine": "light-1", "lux": 412.7, "timestamp": "2026-12-01T13:30:00.123Z"}
    CamDT/DC1/IfM/temp/temp-2    {"machine": "temp-2", "temp": 21.43, "timestamp": ...}
    CamDT/DC1/IfM/co2/co2-1      {"machine": "co2-1", "ppm": 640.2, "timestamp": ...}

The timestamp is UTC in Go's layout "2006-01-02T15:04:05.000Z" (milliseconds, a literal Z), the
`timestamp_format` of the Telegraf inputs; the daily cycles follow the UTC hour of day.

Environment:

    MQTT_URL            the broker, tcp://host[:port] or mqtt://host[:port] (default tcp://mosquitto:1883)
    MQTT_USERNAME       the publisher's login, if the broker wants one (the platform's Mosquitto lets
    MQTT_PASSWORD       anonymous clients read only: Secret `mosquitto-publisher`, keys username/password)
    MQTT_CLIENT_ID      default sensor-simulator-<hostname>
    TOPIC_PREFIX        default CamDT/DC1/IfM
    SENSORS             kinds and how many devices of each, default "light=3,temp=3,co2=2"
                        (kinds: light -> lux, temp -> temp, co2 -> ppm)
    INTERVAL_SECONDS    seconds between rounds (default 5)
    SEED                an integer: the same seed gives the same readings for the same times (default random)
    COUNT               publish that many rounds, then exit (default: run until SIGTERM)
    CONNECT_TIMEOUT_SECONDS  how long to keep trying to reach the broker at start (default 120)

Exit status: 0 when stopped by SIGTERM/SIGINT or after COUNT rounds all acknowledged; 2 with a one-line
reason on stderr for bad settings; 1 when the broker cannot be reached, refuses the login or the publishing,
or (with COUNT) did not acknowledge every reading.

The generation (`SensorSimulator.readings(now)`) is pure of I/O: the tests run it over simulated days.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

NAME = "sensor-simulator"
BAD_CONFIG = 2
BROKER_FAILURE = 1
# Go's layout "2006-01-02T15:04:05.000Z", as Telegraf's json_v2 parses it.
TIMESTAMP_LAYOUT = "2006-01-02T15:04:05.000Z"
QOS = 1
PUBLISH_TIMEOUT_SECONDS = 10.0
CONNACK_TIMEOUT_SECONDS = 10.0
MAX_DEVICES = 1000

log = logging.getLogger(NAME)


class ConfigError(ValueError):
    """A setting is missing its shape; the message names the variable and what it should look like."""


class BrokerError(RuntimeError):
    """The broker cannot be reached, refused the login, or refused a publish."""


def format_timestamp(moment: datetime) -> str:
    """`moment` in UTC, in Go's layout 2006-01-02T15:04:05.000Z (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def hour_of_day(moment: datetime) -> float:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return moment.hour + moment.minute / 60 + moment.second / 3600 + moment.microsecond / 3.6e9


def smoothstep(hour: float, start: float, end: float) -> float:
    """0 before `start`, 1 after `end`, a smooth ramp between (hours of one day)."""
    if hour <= start:
        return 0.0
    if hour >= end:
        return 1.0
    x = (hour - start) / (end - start)
    return x * x * (3 - 2 * x)


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class MeanReverting:
    """An Ornstein-Uhlenbeck process sampled at irregular times: a slow random walk pulled back to 0, with
    stationary standard deviation `sd` and relaxation time `tau_seconds`; the same statistics whatever the
    interval between samples."""

    def __init__(self, rng: random.Random, sd: float, tau_seconds: float) -> None:
        self.rng, self.sd, self.tau = rng, sd, tau_seconds
        self.value = rng.gauss(0.0, sd)
        self.last: datetime | None = None

    def step(self, now: datetime) -> float:
        if self.last is not None:
            dt = clamp((now - self.last).total_seconds(), 0.0, 10 * self.tau)
            decay = math.exp(-dt / self.tau)
            shock = self.sd * math.sqrt(1 - decay * decay) * self.rng.gauss(0.0, 1.0)
            self.value = self.value * decay + shock
        self.last = now
        return self.value


class Model:
    """One device's readings: `field` is the JSON key of its value, `decimals` its rounding."""

    field: ClassVar[str]
    decimals: ClassVar[int]

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def value(self, now: datetime) -> float:
        raise NotImplementedError


class LightModel(Model):
    """Artificial light of a hospital lab, in lux: lights on from about 07:00 to 19:30 at the room's level
    (380-560 lux) plus some daylight through the windows around noon; dim night lighting (or dark rooms)
    at night; a little noise; now and then the lights off for a few readings, or a low reading (a shadow,
    a dimmed bank)."""

    field = "lux"
    decimals = 1
    OFF_START = 0.004  # chance per reading that the lights go off for a while
    LOW_READING = 0.01  # chance per reading of one low reading

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.lit = rng.uniform(380.0, 560.0)
        self.daylight = rng.uniform(0.0, 120.0)
        self.night = rng.choice([rng.uniform(20.0, 60.0), rng.uniform(0.5, 5.0)])  # night lights or dark
        self.on_at = rng.uniform(6.5, 7.5)
        self.off_at = rng.uniform(19.0, 20.0)
        self.off_readings = 0

    def value(self, now: datetime) -> float:
        hour = hour_of_day(now)
        on = smoothstep(hour, self.on_at - 0.5, self.on_at + 0.5) * (
            1 - smoothstep(hour, self.off_at - 0.5, self.off_at + 0.5)
        )
        sun = max(0.0, math.sin(math.pi * (hour - 6) / 12)) if 6 <= hour <= 18 else 0.0
        lux = self.night + (self.lit - self.night) * on + self.daylight * sun
        lux *= 1 + self.rng.gauss(0.0, 0.02)
        if self.off_readings > 0:
            self.off_readings -= 1
            lux = self.rng.uniform(0.0, 4.0) + self.daylight * sun * 0.3
        elif self.rng.random() < self.OFF_START:
            self.off_readings = self.rng.randint(1, 10)
            lux = self.rng.uniform(0.0, 4.0) + self.daylight * sun * 0.3
        elif self.rng.random() < self.LOW_READING:
            lux *= self.rng.uniform(0.2, 0.5)
        return clamp(lux, 0.0, 1000.0)


class TempModel(Model):
    """Air temperature of a climate-controlled lab, in °C: a room's set point (21.2-22.4), a daily cycle
    warmest mid-afternoon (people, equipment, sun), a slow random walk and sensor noise; 19.5-24.5 at most."""

    field = "temp"
    decimals = 2

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.setpoint = rng.uniform(21.2, 22.4)
        self.amplitude = rng.uniform(0.4, 0.8)
        self.walk = MeanReverting(rng, sd=0.25, tau_seconds=3600.0)

    def value(self, now: datetime) -> float:
        cycle = self.amplitude * math.cos(2 * math.pi * (hour_of_day(now) - 15) / 24)
        drift = clamp(self.walk.step(now), -0.8, 0.8)
        return clamp(self.setpoint + cycle + drift + self.rng.gauss(0.0, 0.03), 19.5, 24.5)


class Co2Model(Model):
    """CO2 in ppm, following the lab's occupancy: outdoor air (~420) at night, up to 900-1100 in the day
    shift, a dip over lunch, a slow random walk (doors, ventilation) and noise; 400-1200."""

    field = "ppm"
    decimals = 1

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.outdoor = rng.uniform(410.0, 440.0)
        self.per_occupancy = rng.uniform(450.0, 620.0)
        self.walk = MeanReverting(rng, sd=35.0, tau_seconds=1800.0)

    @staticmethod
    def occupancy(hour: float) -> float:
        """The share of the day shift present: a night technician, the day shift 08:00-18:00 with a lunch
        dip, the evening thinning out."""
        day = smoothstep(hour, 7.0, 9.0) * (1 - smoothstep(hour, 17.0, 21.0))
        lunch = 0.3 * math.exp(-(((hour - 12.75) / 0.6) ** 2))
        return clamp(0.08 + 0.92 * day - lunch, 0.0, 1.0)

    def value(self, now: datetime) -> float:
        ppm = self.outdoor + self.per_occupancy * self.occupancy(hour_of_day(now))
        ppm += self.walk.step(now) + self.rng.gauss(0.0, 6.0)
        return clamp(ppm, 400.0, 1200.0)


KINDS: dict[str, type[Model]] = {"light": LightModel, "temp": TempModel, "co2": Co2Model}


@dataclass
class Device:
    kind: str
    machine: str
    topic: str
    model: Model

    def reading(self, now: datetime) -> Reading:
        value = round(float(self.model.value(now)), self.model.decimals)
        payload = {"machine": self.machine, self.model.field: value, "timestamp": format_timestamp(now)}
        return Reading(self.topic, payload)


@dataclass(frozen=True)
class Reading:
    topic: str
    payload: dict[str, Any]

    def json(self) -> str:
        return json.dumps(self.payload)


class SensorSimulator:
    """The devices of `sensors` (kind -> count), each with a stable machine id (`light-1`, `temp-2`) and its
    own random stream derived from `seed` and the id: the same seed and times give the same readings."""

    def __init__(self, sensors: Mapping[str, int], topic_prefix: str, seed: int) -> None:
        self.devices: list[Device] = []
        for kind, count in sensors.items():
            for index in range(1, count + 1):
                machine = f"{kind}-{index}"
                # A str seed is hashed with SHA-512, the same on every run and machine.
                rng = random.Random(f"{seed}:{machine}")  # noqa: S311 (simulated data, not secrets)
                topic = f"{topic_prefix}/{kind}/{machine}"
                self.devices.append(Device(kind, machine, topic, KINDS[kind](rng)))

    def readings(self, now: datetime) -> list[Reading]:
        """One reading per device, all stamped `now`."""
        return [device.reading(now) for device in self.devices]


# --- settings --------------------------------------------------------------------------------------------

_URL = re.compile(
    r"^(?:tcp|mqtt)://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?)(?::(?P<port>\d{1,5}))?/?$"
)
_SENSOR_ITEM = re.compile(r"^\s*(?P<kind>[A-Za-z0-9_]+)\s*=\s*(?P<count>[+-]?\d+)\s*$")


def parse_mqtt_url(url: str) -> tuple[str, int]:
    match = _URL.match(url.strip())
    if not match:
        raise ConfigError(f"MQTT_URL must look like tcp://host:1883 (tcp:// or mqtt://, no TLS), got {url!r}")
    port = int(match["port"] or 1883)
    if not 1 <= port <= 65535:
        raise ConfigError(f"MQTT_URL's port must be 1-65535, got {url!r}")
    return match["host"], port


def parse_sensors(spec: str) -> dict[str, int]:
    """'light=3,temp=3,co2=2' -> {'light': 3, 'temp': 3, 'co2': 2}, in the order given."""
    known = ", ".join(KINDS)
    sensors: dict[str, int] = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        match = _SENSOR_ITEM.match(item)
        if not match:
            raise ConfigError(f"SENSORS must look like 'light=3,temp=3,co2=2' (kind=count), got {spec!r}")
        kind, count = match["kind"].lower(), int(match["count"])
        if kind not in KINDS:
            raise ConfigError(f"SENSORS: unknown kind {kind!r} (known: {known})")
        if kind in sensors:
            raise ConfigError(f"SENSORS names {kind!r} twice in {spec!r}")
        if not 0 <= count <= MAX_DEVICES:
            raise ConfigError(f"SENSORS: the count of {kind!r} must be 0-{MAX_DEVICES}, got {count}")
        sensors[kind] = count
    if sum(sensors.values()) == 0:
        raise ConfigError(f"SENSORS names no device (e.g. 'light=3,temp=3,co2=2'; known kinds: {known})")
    if sum(sensors.values()) > MAX_DEVICES:
        raise ConfigError(f"SENSORS: at most {MAX_DEVICES} devices in all, got {sum(sensors.values())}")
    return sensors


def parse_topic_prefix(prefix: str) -> str:
    cleaned = prefix.strip().strip("/")
    if not cleaned or any(c in cleaned for c in "+#\0") or "//" in cleaned:
        raise ConfigError(
            f"TOPIC_PREFIX must be a topic without wildcards (+, #) or empty levels, e.g. CamDT/DC1/IfM, "
            f"got {prefix!r}"
        )
    return cleaned


def _number(environ: Mapping[str, str], name: str, kind: type, low: float, high: float) -> Any:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
    if not (low <= value <= high) or (isinstance(value, float) and math.isnan(value)):
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class SimulatorConfig:
    host: str = "mosquitto"
    port: int = 1883
    topic_prefix: str = "CamDT/DC1/IfM"
    sensors: Mapping[str, int] = field(default_factory=lambda: {"light": 3, "temp": 3, "co2": 2})
    interval_seconds: float = 5.0
    seed: int | None = None
    count: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = field(default_factory=lambda: f"{NAME}-{socket.gethostname()}"[:64])
    connect_timeout_seconds: float = 120.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SimulatorConfig:
        """The settings of the environment; ConfigError (naming the variable) for a bad one."""
        defaults = cls()
        host, port = parse_mqtt_url(environ.get("MQTT_URL") or "tcp://mosquitto:1883")
        interval = _number(environ, "INTERVAL_SECONDS", float, 0.01, 86400.0)
        timeout = _number(environ, "CONNECT_TIMEOUT_SECONDS", float, 0.0, 86400.0)
        username = environ.get("MQTT_USERNAME") or None
        password = environ.get("MQTT_PASSWORD") or None
        if password and not username:
            raise ConfigError("MQTT_PASSWORD is set but MQTT_USERNAME is not")
        return cls(
            host=host,
            port=port,
            topic_prefix=parse_topic_prefix(environ.get("TOPIC_PREFIX") or defaults.topic_prefix),
            sensors=parse_sensors(environ["SENSORS"]) if environ.get("SENSORS") else defaults.sensors,
            interval_seconds=defaults.interval_seconds if interval is None else interval,
            seed=_number(environ, "SEED", int, 0, 2**63 - 1),
            count=_number(environ, "COUNT", int, 1, 10**9),
            username=username,
            password=password,
            client_id=(environ.get("MQTT_CLIENT_ID") or defaults.client_id)[:64],
            connect_timeout_seconds=defaults.connect_timeout_seconds if timeout is None else timeout,
        )

    def summary(self, seed: int) -> str:
        devices = ", ".join(f"{kind}={count}" for kind, count in self.sensors.items())
        rounds = f"{self.count} round(s)" if self.count else "until stopped"
        login = f" as {self.username}" if self.username else " anonymously"
        return (
            f"tcp://{self.host}:{self.port}{login}, {devices} under {self.topic_prefix}/, "
            f"every {self.interval_seconds:g} s, {rounds}, seed {seed}"
        )


# --- MQTT ------------------------------------------------------------------------------------------------


class Publisher:
    """A paho-mqtt client (MQTT 5, so that the broker says when it refuses a publish) run by paho's network
    thread, which also reconnects after a lost connection."""

    # CONNACK reasons that no retry mends.
    FATAL_CONNECT = frozenset({"Bad user name or password", "Not authorized", "Bad authentication method"})

    def __init__(self, config: SimulatorConfig, stop: threading.Event) -> None:
        from paho.mqtt.client import CallbackAPIVersion, Client, MQTTProtocolVersion

        self.config, self.stop = config, stop
        self.client = Client(
            CallbackAPIVersion.VERSION2, client_id=config.client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        if config.username:
            self.client.username_pw_set(config.username, config.password)
        self.client.reconnect_delay_set(1, 10)
        self.client.max_queued_messages_set(4 * sum(config.sensors.values()))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.connack = threading.Event()
        self.connack_reason: Any = None
        self.acks: dict[int, Any] = {}
        self.lock = threading.Lock()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connack_reason = reason
        self.connack.set()
        if not reason.is_failure:
            log.info("connected to %s:%d", self.config.host, self.config.port)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure and not self.stop.is_set():
            log.warning("lost the broker (%s); reconnecting", reason)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self.lock:
            self.acks[mid] = reason

    def connect(self) -> bool:
        """Connect, retrying while the broker is unreachable (it may still be starting) up to the connect
        timeout; False if stopped meanwhile. BrokerError when it stays unreachable or refuses the login."""
        cfg = self.config
        deadline = time.monotonic() + cfg.connect_timeout_seconds
        delay, attempt = 0.5, 0
        while not self.stop.is_set():
            attempt += 1
            try:
                self.connack.clear()
                self.client.connect(cfg.host, cfg.port, keepalive=30)
                self.client.loop_start()
                if self.connack.wait(CONNACK_TIMEOUT_SECONDS):
                    reason = self.connack_reason
                    if not reason.is_failure:
                        return True
                    self.client.loop_stop()
                    if str(reason) in self.FATAL_CONNECT:
                        raise BrokerError(
                            f"the broker at {cfg.host}:{cfg.port} refused the login: {reason} "
                            "(check MQTT_USERNAME / MQTT_PASSWORD)"
                        )
                    problem = f"refused: {reason}"
                else:
                    self.client.loop_stop()
                    problem = "no CONNACK"
            except OSError as e:  # refused, unreachable, name not resolved (yet)
                problem = f"{type(e).__name__}: {e}"
            if time.monotonic() + delay > deadline:
                raise BrokerError(
                    f"cannot reach the MQTT broker at {cfg.host}:{cfg.port} (MQTT_URL) after {attempt} "
                    f"attempt(s) in {cfg.connect_timeout_seconds:g} s: {problem}"
                )
            log.warning("broker %s:%d not ready (%s); retrying in %.1f s", cfg.host, cfg.port, problem, delay)
            self.stop.wait(delay)
            delay = min(delay * 2, 10.0)
        return False

    def publish(self, readings: list[Reading]) -> int:
        """Publish at QoS 1 and wait for each acknowledgement; the number acknowledged. BrokerError when the
        broker refuses a publish (not authorised: it would refuse every one)."""
        if not self.client.is_connected():
            return 0
        with self.lock:
            self.acks.clear()  # late acknowledgements of an earlier round's messages
        sent = [(r, self.client.publish(r.topic, r.json(), qos=QOS)) for r in readings]
        deadline = time.monotonic() + PUBLISH_TIMEOUT_SECONDS
        acknowledged = 0
        for reading, info in sent:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as e:  # not sent: no connection, queue full
                log.debug("%s not sent: %s", reading.topic, e)
                continue
            if not info.is_published():
                continue
            with self.lock:
                reason = self.acks.pop(info.mid, None)
            if reason is not None and reason.is_failure:
                raise BrokerError(
                    f"the broker refused to let this client publish to {reading.topic}: {reason} "
                    "(the platform's Mosquitto lets only its publisher publish: set MQTT_USERNAME and "
                    "MQTT_PASSWORD from the Secret mosquitto-publisher)"
                )
            acknowledged += 1
        return acknowledged

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(
    config: SimulatorConfig,
    stop: threading.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Publish rounds every INTERVAL_SECONDS until `stop` is set or COUNT rounds are done; the exit status.
    BrokerError for a broker that cannot be reached or refuses."""
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**63)
    simulator = SensorSimulator(config.sensors, config.topic_prefix, seed)
    log.info("publishing to %s", config.summary(seed))
    publisher = Publisher(config, stop)
    if not publisher.connect():
        log.info("stopped before connecting")
        return 0
    rounds = missing = 0
    started = time.monotonic()
    try:
        while not stop.is_set():
            readings = simulator.readings(clock())
            published = publisher.publish(readings)
            rounds += 1
            missing += len(readings) - published
            note = "" if published == len(readings) else " (broker unreachable or slow; reconnecting)"
            log.info("round %d: published %d/%d readings%s", rounds, published, len(readings), note)
            if config.count is not None and rounds >= config.count:
                break
            # A fixed cadence: round k starts at started + k * interval (skipping any round missed).
            now, interval = time.monotonic(), config.interval_seconds
            stop.wait(max(0.0, started + interval * (math.floor((now - started) / interval) + 1) - now))
    finally:
        publisher.close()
    if stop.is_set():
        log.info("stopped after %d round(s)", rounds)
        return 0
    if missing:
        log.error("%d reading(s) of %d round(s) were not acknowledged", missing, rounds)
        return BROKER_FAILURE
    return 0


def main(environ: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format=f"%(asctime)s {NAME} %(levelname)s %(message)s"
    )
    try:
        config = SimulatorConfig.from_env(os.environ if environ is None else environ)
    except ConfigError as e:
        print(f"{NAME}: error: {e}", file=sys.stderr)
        return BAD_CONFIG
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        return run(config, stop)
    except BrokerError as e:
        print(f"{NAME}: error: {e}", file=sys.stderr)
        return BROKER_FAILURE


if __name__ == "__main__":
    sys.exit(main())
