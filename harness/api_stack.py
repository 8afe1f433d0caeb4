"""A running API over a per-test-module stack: broker, InfluxDB database, SQLite store, ingest.

``api`` (module-scoped fixture) starts ``examwatch api serve`` as a real process on a free
port, with its own inventory, timetable (a paper two hours from now), store and drills
directory, and hands out a token per role. Alarms are opened with the store's lifecycle
functions, as the engine does; telemetry goes device → broker → ingest → InfluxDB.
``told`` records what the notifier would have (its view of an alarm, with a short code and the
level told, and one alert SMS), and ``link`` signs the alert's link to the mobile page.
"""

from __future__ import annotations

import shutil
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from examwatch import links
from examwatch.alarm import Severity, Subject, SubjectType
from examwatch.inventory import load as load_inventory
from examwatch.store import Readiness, lifecycle, open_store, writing
from examwatch.store.access import Role, create_token
from examwatch.store.lifecycle import open_alarm
from examwatch.store.notify_models import Notification, NotifyAlarm
from harness.notify_kit import ROOT, roster_yaml
from harness.servers import Influx as InfluxServer
from harness.servers import Server, free_port, wait_for
from harness.stack import EXAMWATCH, Stack, _toml

#: A short real drill for `POST /drills` (the API runs `examwatch drill run` on it).
POWER_CUT = """\
name: power-cut
title: storage-room mains lost for 6 s
paper: {paper}
interval: 2
warmup: 4s
tail: 6s
faults:
  - {{type: mains_lost, device: S01-VAULT-PWR1, at: -50m, for: 6s}}
"""


class ApiProcess(Server):
    name = "api"

    def __init__(self, root: Path, config: Path, port: int) -> None:
        super().__init__(root)
        self.config = config
        self.port = port

    def command(self) -> list[str]:
        return [EXAMWATCH, "api", "serve", "--config", str(self.config), "--port", str(self.port)]

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class ApiStack(Stack):
    api_port: int = field(default_factory=free_port)
    api_overrides: dict[str, Any] = field(default_factory=dict)

    def write_config(self) -> None:
        super().write_config()
        self.store_url = f"sqlite:///{self.root / 'store.db'}"
        self.notify_store_url = f"sqlite:///{self.root / 'notify.db'}"  # the notifier's own, as deployed
        self.timetable_path = self.root / "timetable.yaml"
        start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        self.paper = "t-chinese"
        self.timetable_path.write_text(yaml.safe_dump({"exam": "测试考试", "papers": [
            {"id": self.paper, "subject": "语文", "start": start.isoformat(),
             "end": (start + timedelta(hours=2)).isoformat()}]}, allow_unicode=True))
        scenarios = self.root / "scenarios"
        scenarios.mkdir(exist_ok=True)
        (scenarios / "power-cut.yaml").write_text(POWER_CUT.format(paper=self.paper))
        api = {"port": self.api_port, "drills_dir": str(self.root / "drills"), "scenarios_dir": str(scenarios),
               "status_cache_s": 0.2, "sse_poll_ms": 50,
               "reload_wait_s": 1.0, **self.api_overrides}
        # The API writes the rules files and the roster: copies of its own, never the repository's.
        self.rules_dir = self.root / "rules"
        shutil.copytree(ROOT / "config" / "rules", self.rules_dir, dirs_exist_ok=True)
        self.roster_path = self.root / "roster.yaml"
        self.roster_path.write_text(roster_yaml([s.id for s in load_inventory(self.inventory_path).sites]))
        doc = tomllib.loads(self.config.read_text())
        doc.update(timetable=str(self.timetable_path), store={"url": self.store_url}, api=api,
                   rules={"rules_dir": str(self.rules_dir), "restart_grace_s": 0, "tick_s": 0.2},
                   notify={"roster": str(self.roster_path), "state_dir": str(self.root / "notify"),
                           "store_url": self.notify_store_url})
        self.config.write_text(_toml(doc))

    def start_api(self) -> None:
        self.store = open_store(self.store_url)
        self.notes = open_store(self.notify_store_url)
        self.tokens = {role: create_token(self.store, f"test-{role.value}", role, "test")[1] for role in Role}
        self.server = ApiProcess(self.root / "logs", self.config, self.api_port)
        self.server.start(timeout=30)
        self.url = f"http://127.0.0.1:{self.api_port}"

    def http(self, role: Role | None = Role.VIEWER) -> httpx.Client:
        headers = {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def open_alarm(self, device: str, rule: str = "jammer_offline", severity: Severity = Severity.MAJOR,
                   drill: bool = False) -> int:
        ref = self.inventory.devices[device]
        with writing(self.store) as conn:
            view = open_alarm(conn, rule, Subject.device(ref), severity=severity, message=f"{rule} on {device}",
                              drill=drill, at_ns=time.time_ns(), pending_for_s=0)
        return view.id

    def open_site_alarm(self, site: str, rule: str = "site_silent") -> int:
        with writing(self.store) as conn:
            view = open_alarm(conn, rule, Subject(site, SubjectType.SITE, site), severity=Severity.CRITICAL,
                              message="silent", drill=False, at_ns=time.time_ns(), pending_for_s=0)
        return view.id

    def told(self, alarm_id: int, code: str, person: str, phone: str, level: int = 1) -> int:
        """Record, as the notifier does, that ``person`` was texted about the alarm at ``level`` with
        ``code``: its notify_alarm row and one alert notification (sent). The notification's id."""
        with self.store.connect() as conn:
            a = lifecycle.get(conn, alarm_id)
        now = time.time_ns()
        na, n = NotifyAlarm.__table__, Notification.__table__
        with writing(self.notes) as conn:
            if conn.execute(sa.select(na.c.alarm_id).where(na.c.alarm_id == alarm_id)).first() is None:
                conn.execute(sa.insert(na).values(
                    alarm_id=alarm_id, seq=a.seq, rule=a.rule, site=a.site, subject=a.subject,
                    subject_type=a.subject_type, severity=a.severity, state=a.state, drill=a.drill,
                    fired_cause=f"{alarm_id}.{a.seq}", fired_ns=a.opened_ns, level=level, updated_ns=now, code=code))
            return int(conn.execute(sa.insert(n).values(
                alarm_id=alarm_id, cause=f"{alarm_id}.{a.seq}", kind="alert", level=level, person=person,
                address=phone, text=f"【考务告警】{a.site} {a.rule} {code}", drill=a.drill, status="sent",
                attempts=1, created_ns=now, next_try_ns=now, sent_ns=now, result="0: Accepted for delivery",
            ).returning(n.c.id)).scalar_one())

    def link(self, notification_id: int, ttl_s: float = 3600) -> str:
        """The token of the alert's link to the mobile page (``/m/<token>``)."""
        return links.sign(self.secret, notification_id, time.time() + ttl_s)

    def set_readiness(self, site: str, room: str, go: bool, detail: str = "", at_ns: int | None = None) -> int:
        """Write a readiness row as the rules engine does; returns its time (ns)."""
        at = at_ns if at_ns is not None else time.time_ns()
        table = Readiness.__table__
        with writing(self.store) as conn:
            conn.execute(sa.delete(table).where(table.c.paper == self.paper, table.c.site == site,
                                                table.c.room == room))
            conn.execute(sa.insert(table).values(paper=self.paper, site=site, room=room, go=go, detail=detail,
                                                 drill=False, at_ns=at, sent=True))
        return at

    def close(self) -> None:
        if getattr(self, "server", None) is not None:
            self.server.stop()
        super().close()


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        influx_server: InfluxServer) -> Iterator[ApiStack]:
    """A broker, a database, ingest and the API of this test module's own."""
    name = "t_api_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_api_")[:40]
    s = ApiStack(tmp_path_factory.mktemp("api"), influx_server, name)
    s.mosquitto.start()
    try:
        s.start_ingest()
        s.start_api()
        yield s
    finally:
        s.close()


def wait_ok(client: httpx.Client, path: str, cond: Any, timeout: float = 20) -> Any:
    """GET ``path`` until ``cond(json)`` holds; return the last body."""
    seen: dict[str, Any] = {}

    def check() -> bool:
        r = client.get(path)
        seen["body"] = r.json()
        return r.status_code == 200 and bool(cond(seen["body"]))

    wait_for(check, timeout, f"{path} to satisfy the condition")
    return seen["body"]
