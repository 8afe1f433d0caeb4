"""Shared by the notifier's integration tests and its benchmark: config, roster, processes, transitions."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, cast

import paho.mqtt.client as paho
import sqlalchemy as sa

from examwatch.alarm import AlarmTransition
from examwatch.store import engine, writing
from examwatch.store.notify_models import Notification, NotifyFlood
from harness.servers import Kannel, Server, free_port
from harness.stack import EXAMWATCH, Stack, _toml

ROOT = Path(__file__).parents[1]
_N = cast(sa.Table, Notification.__table__)

#: The test roster for the stack's 3 sites: chiefs (level 1), the center (2), the power bureau (3), drills.
PHONES = {"chief-S01": "13900000001", "chief-S02": "13900000002", "chief-S03": "13900000003",
          "center": "13800000001", "bureau": "95598000001", "drill": "13700000001"}


def roster_yaml(sites: list[str], robot: str | None = None) -> str:
    """The test roster; with ``robot`` (an Apprise URL) S01's duty group chat is told at level 1 too."""
    people = [f"  - {{id: chief-{s}, name: {s}主考, phones: ['{PHONES.get(f'chief-{s}', '1390000' + s[1:].zfill(4))}']}}"
              for s in sites]
    routes = [f"  - {{name: chief-{s}, level: 1, sites: [{s}], people: [chief-{s}]}}" for s in sites]
    if robot is not None:
        people.append(f"  - {{id: group-S01, name: S01考务群, robots: ['{robot}']}}")
        routes.append("  - {name: group-S01, level: 1, sites: [S01], people: [group-S01]}")
    return "\n".join([
        "people:", *people,
        f"  - {{id: center, name: 指挥中心, phones: ['{PHONES['center']}']}}",
        f"  - {{id: bureau, name: 电业局, phones: ['{PHONES['bureau']}']}}",
        f"  - {{id: drill, name: 演练评估员, phones: ['{PHONES['drill']}']}}",
        "routes:", *routes,
        "  - {name: center, level: 2, people: [center]}",
        "  - {name: bureau, level: 3, kinds: [power], severities: [critical], people: [bureau]}",
        "  - {name: drill, level: 1, drill: true, people: [drill]}",
        "labels:",
        "  power_mains_lost: {zh: 市电中断, en: mains lost}",
        "  power_on_ups: {zh: UPS供电, en: on UPS}",
        "  power_ups_low: {zh: UPS电量低, en: UPS low}",
        "  jammer_shielding: {zh: 屏蔽信号不足, en: jammer band below floor}",
        "incidents:",
        "  storage_power:",
        "    rules: [power_mains_lost, power_on_ups, power_ups_low]",
        "    implies: {power_mains_lost: [power_on_ups]}",
    ]) + "\n"


def write_config(stack: Stack, kannel: Kannel | None, name: str = "notify.toml", rules: bool = False,
                 rules_dir: Path = ROOT / "config" / "rules", timetable: Path = ROOT / "config" / "timetable.yaml",
                 clock: dict[str, Any] | None = None, api: dict[str, Any] | None = None, robot: str | None = None,
                 **notify: Any) -> Path:
    """The stack's config plus [store], [notify] (Kannel as the provider, the notifier's own store),
    with ``rules`` [rules] (the shipped rules and timetable unless ``rules_dir`` and ``timetable`` say
    otherwise), with ``clock`` a [clock] section (a drill clock: start, wall_start, speed), and with
    ``api`` an [api] section (where delivery reports go: host, port; public_url for links); ``robot``
    gives S01 a duty group chat (see :func:`roster_yaml`)."""
    sites = [s.id for s in stack.inventory.sites]
    roster = stack.root / "roster.yaml"
    roster.write_text(roster_yaml(sites, robot))
    cfg: dict[str, Any] = {"roster": str(roster), "store_url": notify_store_url(stack), "state_dir": str(stack.root / "notify"),
                           "retry_min_s": 0.5, "retry_max_s": 2.0, "rate_per_phone": 1000}
    if kannel is not None:
        cfg.update(kannel_url=kannel.sendsms_url, kannel_username=kannel.user, kannel_password=kannel.password)
    cfg.update(notify)
    doc: dict[str, Any] = {"store": {"url": store_url(stack)}, "notify": cfg}
    if clock is not None:
        doc["clock"] = clock
    if api is not None:
        doc["api"] = api
    if rules:
        doc["timetable"] = str(timetable)
        doc["rules"] = {"rules_dir": str(rules_dir), "restart_grace_s": 0}
    path = stack.root / name
    top = f'timetable = "{doc.pop("timetable")}"\n' if rules else ""  # top-level keys come before any table
    path.write_text(top + stack.config.read_text() + _toml(doc))
    return path


def store_url(stack: Stack) -> str:
    """The shared store: the rules engine's alarms and transitions."""
    return f"sqlite:///{stack.root}/state.db"


def notify_store_url(stack: Stack) -> str:
    """The notifier's own store: its outbox, timers, silences, short codes."""
    return f"sqlite:///{stack.root}/notify.db"


class ServiceProcess(Server):
    """``examwatch notify`` (or ``rules``) as a child process, ready once connected to the broker."""

    def __init__(self, root: Path, config: Path, command: str = "notify") -> None:
        super().__init__(root)
        self.name = command
        self.config = config
        self.subcommand = command

    def command(self) -> list[str]:
        return [EXAMWATCH, self.subcommand, "--config", str(self.config)]

    def ready(self) -> bool:
        path = self.root / f"{self.name}.out"
        return path.exists() and "connected (session present" in path.read_text(errors="replace")


class Processes:
    """The services a test starts on its stack; all SIGKILLed at the end."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.started: list[ServiceProcess] = []

    def start(self, config: Path, command: str = "notify") -> ServiceProcess:
        proc = ServiceProcess(self.stack.root / "logs", config, command)
        proc.start(timeout=30)
        self.started.append(proc)
        return proc

    def notifier(self, kannel: Kannel | None, **notify: Any) -> ServiceProcess:
        return self.start(write_config(self.stack, kannel, **notify))

    def kill_all(self) -> None:
        for p in self.started:
            p.kill()


def transition(alarm_id: int, seq: int, state: str, *, site: str = "S01", rule: str = "power_mains_lost",
               subject: str | None = None, severity: str = "critical", drill: bool = False,
               at_ns: int | None = None, message: str = "mains_v 0 < 187") -> tuple[str, bytes]:
    """Topic and payload exactly as the rules engine's outbox publishes them (the alarm contract makes them)."""
    msg = AlarmTransition.model_validate(
        {"alarm_id": alarm_id, "seq": seq, "rule": rule, "severity": severity, "site": site,
         "subject": subject or f"{site}-VAULT-PWR1", "subject_type": "device", "state": state, "message": message,
         "drill": drill, "at_ns": at_ns or time.time_ns()})
    return msg.topic, msg.payload()


def publish(c: paho.Client, msgs: list[tuple[str, bytes]], timeout_s: float = 10.0) -> None:
    """Publish (QoS 1, retained) and wait until the broker acknowledged every message; fail loudly if not."""
    infos = [c.publish(topic, payload, qos=1, retain=True) for topic, payload in msgs]
    deadline = time.monotonic() + timeout_s
    for info in infos:
        info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        if not info.is_published():
            missing = sum(not i.is_published() for i in infos)
            raise TimeoutError(f"the broker acknowledged {len(infos) - missing} of {len(infos)} messages "
                               f"within {timeout_s:.0f} s")


def notifications(stack: Stack, **where: Any) -> list[dict[str, Any]]:
    """The notifier's outbox rows (from its own store) matching ``where``, oldest first."""
    return _rows(stack, _N, where)


def floods(stack: Stack, **where: Any) -> list[dict[str, Any]]:
    """The notifier's floods (from its own store) matching ``where``, oldest first."""
    return _rows(stack, cast(sa.Table, NotifyFlood.__table__), where)


def _rows(stack: Stack, table: sa.Table, where: dict[str, Any]) -> list[dict[str, Any]]:
    eng = engine(notify_store_url(stack))
    try:
        with eng.connect() as conn:
            q = sa.select(table).where(*(table.c[k] == v for k, v in where.items())).order_by(table.c.id)
            return [dict(r) for r in conn.execute(q).mappings()]
    finally:
        eng.dispose()


def sms_to(kannel: Kannel, phone: str, since: int = 0) -> list[str]:
    """Texts fakesmsc received for ``phone`` (after the first ``since`` messages)."""
    return [text for _f, to, text in kannel.smsc.messages()[since:] if to == phone]


def payload_of(topic_payload: tuple[str, bytes]) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(topic_payload[1]))


class FakeDlrEndpoint(ThreadingHTTPServer):
    """A fake of the API's ``GET /sms/dlr?n=&t=&k=``: records Kannel's delivery reports in the
    notifier's store as the API does (``notification.delivery``, ``delivered_ns``; a final report is
    not overwritten by a later one), so the notifier's side can be tested without the API."""

    DELIVERY: ClassVar[dict[int, str]] = {1: "delivered", 2: "failed", 4: "buffered", 8: "submitted", 16: "failed"}

    def __init__(self, stack: Stack) -> None:
        self.reports: list[tuple[int, int, str]] = []  # (notification id, type, key)
        self.store = engine(notify_store_url(stack))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                n, t, k = int(query["n"][0]), int(query["t"][0]), query.get("k", [""])[0]
                server.reports.append((n, t, k))
                delivery = server.DELIVERY.get(t, "")
                with writing(server.store) as conn:
                    current = conn.execute(sa.select(_N.c.delivery).where(_N.c.id == n)).scalar_one_or_none()
                    if current not in ("delivered", "failed"):
                        conn.execute(sa.update(_N).where(_N.c.id == n).values(delivery=delivery,
                                                                              delivered_ns=time.time_ns()))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def api(self) -> dict[str, Any]:
        """The [api] settings that point the notifier's delivery reports here."""
        return {"host": "127.0.0.1", "port": self.server_address[1]}

    def start(self) -> FakeDlrEndpoint:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.store.dispose()
