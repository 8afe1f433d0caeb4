"""A per-test examwatch stack: its own broker (generated config, ACL), database and ingest processes."""

from __future__ import annotations

import json
import random
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml

from examwatch import broker, credentials, mqtt, sample, topics
from examwatch.bands import EXAM_ROOM_BANDS
from examwatch.influx import Influx
from examwatch.inventory import Device, Inventory
from examwatch.settings import Settings, load_settings
from harness.servers import Influx as InfluxServer
from harness.servers import Mosquitto, Server, current_user, free_port, wait_for
from simulators.readings import TELEMETRY

EXAMWATCH = str(Path(sys.executable).parent / "examwatch")


class IngestProcess(Server):
    name = "ingest"

    def __init__(self, root: Path, config: Path, worker: str, metrics_port: int) -> None:
        super().__init__(root)
        self.name = f"ingest-{worker}"
        self.config = config
        self.worker = worker
        self.metrics_port = metrics_port

    def command(self) -> list[str]:
        return [EXAMWATCH, "ingest", "--config", str(self.config), "--worker", self.worker]

    def ready(self) -> bool:
        path = self.root / f"{self.name}.out"
        return path.exists() and "connected (session present" in path.read_text(errors="replace")


@dataclass
class Stack:
    root: Path
    influx_server: InfluxServer
    db: str
    rooms: int = 3
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    mqtt_port: int = field(default_factory=free_port)
    ingest_overrides: dict[str, Any] = field(default_factory=dict)
    #: an existing inventory file (the benchmark uses the shipped sample district) instead of a small one
    inventory_file: Path | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.inventory_file is not None:
            self.inventory_path = self.inventory_file.resolve()
        else:
            self.inventory_path = self.root / "inventory.yaml"
            with self.inventory_path.open("w") as f:
                sample.dump(sample.district(formal=2, backup=1, rooms=self.rooms, name="测试区"), f)
        self.config = self.root / "examwatch.toml"
        self.write_config()
        self.settings: Settings = load_settings(self.config)
        self.inventory: Inventory = Inventory.model_validate(yaml.safe_load(self.inventory_path.read_text()))
        files = broker.write(self.inventory, self.secret, self.settings.broker, self.root / "broker")
        self.mosquitto = Mosquitto(self.root / "mosquitto", files.conf, self.mqtt_port)
        self.influx = Influx(self.settings.influx)
        self.ingests: list[IngestProcess] = []
        self._clients: list[paho.Client] = []

    def write_config(self) -> None:
        ingest = {
            "spool_dir": str(self.root / "spool"),
            "metrics_port": 0,
            "batch_latency_ms": 100,
            "stats_interval_s": 1.0,
            **self.ingest_overrides,
        }
        doc = {
            "secret": self.secret,
            "inventory": str(self.inventory_path),
            "mqtt": {"port": self.mqtt_port},
            "influx": {"url": self.influx_server.url, "database": self.db},
            "ingest": ingest,
            "broker": {"port": self.mqtt_port, "data_dir": str(self.root / "mosquitto"), "user": current_user()},
        }
        self.config.write_text(_toml(doc))

    def start_ingest(self, worker: str = "1", metrics_port: int = 0) -> IngestProcess:
        if metrics_port:
            self.ingest_overrides["metrics_port"] = metrics_port
            self.write_config()
        proc = IngestProcess(self.root / "logs", self.config, worker, metrics_port)
        proc.start(timeout=30)
        self.ingests.append(proc)
        return proc

    def client(self, username: str, client_id: str | None = None, **kw: Any) -> paho.Client:
        """A connected MQTT client with ``username``'s derived password."""
        c = mqtt.client(
            self.settings.mqtt,
            client_id or f"t-{username}-{secrets.token_hex(3)}",
            username,
            credentials.password(self.secret, username),
        )
        for k, v in kw.items():
            setattr(c, k, v)
        mqtt.connect_and_wait(c, self.settings.mqtt, clean_start=True)
        self._clients.append(c)
        return c

    def gateway(self, site: str = "S01") -> paho.Client:
        return self.client(credentials.gateway_user(site))

    def count(self, measurement: str, where: str = "") -> int:
        """Points in ``measurement`` (counted on skew_ms, or on size/online for the others)."""
        field_name = {"ingest_reject": "size", "device_status": "online"}.get(measurement, "skew_ms")
        q = f'SELECT count("{field_name}") FROM "{measurement}"' + (f" WHERE {where}" if where else "")
        rows = self.influx.rows(q)
        return int(rows[0]["count"]) if rows else 0

    def wait_count(self, measurement: str, expected: int, timeout: float = 60, where: str = "") -> None:
        seen = {"n": -1}

        def done() -> bool:
            seen["n"] = self.count(measurement, where)
            return seen["n"] >= expected

        try:
            wait_for(done, timeout, f"{expected} points in {measurement}", interval=0.2)
        except TimeoutError as exc:
            raise AssertionError(f"{measurement}: {seen['n']} of {expected} points arrived") from exc

    def close(self) -> None:
        for c in self._clients:
            c.disconnect()
            c.loop_stop()
        for p in self.ingests:
            p.kill()
        self.mosquitto.kill()


def telemetry(device: str, kind: str, ts_ms: int | None = None, **over: Any) -> bytes:
    """A valid telemetry payload for ``device`` of ``kind``, as the simulator makes it."""
    spec = device_spec(device, kind)
    payload = TELEMETRY[kind](spec, ts_ms or time.time_ns() // 1_000_000, random.Random(1), 5)
    payload.update(over)
    return json.dumps(payload).encode()


def device_spec(device: str, kind: str) -> Device:
    extra: dict[str, Any] = {}
    if kind == "jammer":
        extra["bands"] = EXAM_ROOM_BANDS
    if kind == "detector":
        extra["form"] = "handheld"
    return Device(id=device, kind=kind, room="R01", **extra)


def acked(info: paho.MQTTMessageInfo, timeout: float = 30.0) -> None:
    """Wait for the broker's ack of one publish; raise when it does not come (paho's
    ``wait_for_publish`` returns quietly on a timeout, which would hide a lost message)."""
    info.wait_for_publish(timeout)
    if not info.is_published():
        raise TimeoutError(f"the broker did not acknowledge message {info.mid} within {timeout:.0f} s (rc {info.rc})")


def publish_all(c: paho.Client, msgs: list[tuple[str, bytes]], qos: int = 1, window: int = 1000) -> None:
    """Publish with at most ``window`` unacknowledged messages, and wait for every ack (or raise)."""
    pending: list[paho.MQTTMessageInfo] = []
    for topic, payload in msgs:
        pending.append(c.publish(topic, payload, qos=qos))
        if len(pending) >= window:
            acked(pending.pop(0))
    for info in pending:
        acked(info)


def device_topic(stack: Stack, device: str, channel: str = "telemetry") -> str:
    ref = stack.inventory.devices[device]
    return topics.device_topic(ref.site, ref.kind, device, channel)


def _toml(doc: dict[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    out = "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in scalars.items())
    for k, v in doc.items():
        if isinstance(v, dict):
            out += f"\n[{prefix}{k}]\n" + _toml(v, f"{prefix}{k}.")
    return out
