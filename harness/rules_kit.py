"""Shared by the rules tests: a small world, a timetable around now, a settable clock, rules files."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import secrets
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from examwatch import sample
from examwatch.inventory import Inventory
from examwatch.rulebook.files import RuleSet, load_dir
from examwatch.store import open_store
from examwatch.timetable import Timetable
from harness.servers import Postgres, wait_for
from harness.stack import EXAMWATCH, _toml, device_topic, publish_all, telemetry
from rules.engine import Engine
from rules.intake import Intake
from rules.model import Observation
from rules.types._base import observe
from rules.world import World
from simulators.behaviour import DeviceSim, SiteDay, step


def inventory(rooms: int = 3) -> Inventory:
    return Inventory.model_validate(sample.district(formal=2, backup=1, rooms=rooms, name="测试区"))


def timetable(
    now: float, start_in_s: float = -600, length_s: float = 3600, off: tuple[float, float] | None = None
) -> Timetable:
    """One paper at every site, starting ``start_in_s`` from ``now`` (negative: already on)."""
    start = datetime.fromtimestamp(now, UTC) + timedelta(seconds=start_in_s)
    paper: dict[str, Any] = {
        "id": "p1",
        "subject": "数学",
        "start": start.isoformat(),
        "end": (start + timedelta(seconds=length_s)).isoformat(),
    }
    if off is not None:
        paper["jammer_off"] = [
            {
                "start": (start + timedelta(seconds=off[0])).isoformat(),
                "end": (start + timedelta(seconds=off[1])).isoformat(),
                "reason": "听力",
            }
        ]
    return Timetable.model_validate({"exam": "test", "papers": [paper]})


def timetable_yaml(tt: Timetable) -> str:
    return yaml.safe_dump(tt.model_dump(mode="json"), allow_unicode=True)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


#: Short timeouts so tests never wait long; the site times out before its devices.
TEST_RULES: dict[str, list[dict[str, Any]]] = {
    "jammer": [
        {"name": "jammer_offline", "type": "absence", "severity": "major", "timeout_s": 3},
        {
            "name": "jammer_shielding",
            "type": "timetable",
            "require": "jammer_shielding",
            "severity": "critical",
            "floor_dbm": 20,
        },
        {
            "name": "jammer_hot",
            "type": "threshold",
            "field": "temperature_c",
            "levels": [{"severity": "minor", "above": 70}, {"severity": "major", "above": 85}],
            "clear": {"below": 65},
        },
        {"name": "jammer_clock", "type": "skew"},
    ],
    "camera": [
        {"name": "camera_offline", "type": "absence", "timeout_s": 3},
        {"name": "room_recording", "type": "timetable", "require": "camera_recording", "severity": "major"},
    ],
    "gate": [
        {"name": "gate_offline", "type": "absence", "timeout_s": 3},
        {
            "name": "gate_surge",
            "type": "ratio",
            "numerator": "face_match_failures",
            "denominator": "passes",
            "window_s": 300,
            "above": 0.2,
            "clear_below": 0.1,
            "min_denominator": 20,
        },
    ],
    "power": [
        {"name": "power_offline", "type": "absence", "severity": "critical", "timeout_s": 3},
        {
            "name": "power_mains_lost",
            "type": "threshold",
            "field": "mains_v",
            "levels": [{"severity": "critical", "below": 187}],
            "clear": {"above": 200},
        },
    ],
    "detector": [
        {
            "name": "detector_battery_low",
            "type": "threshold",
            "field": "battery_pct",
            "levels": [{"severity": "minor", "below": 20}],
            "clear": {"above": 30},
            "for": 2,
        }
    ],
    "site": [
        {"name": "site_silent", "type": "absence", "severity": "critical", "timeout_s": 1.5},
        {"name": "room_coverage", "type": "coverage"},
        {"name": "readiness", "type": "readiness"},
    ],
}


def write_rules(directory: Path, rules: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for kind, items in (rules or TEST_RULES).items():
        (directory / f"{kind}.yaml").write_text(yaml.safe_dump({"rules": items}, allow_unicode=True))
    return directory


def ruleset(tmp: Path, rules: dict[str, list[dict[str, Any]]] | None = None) -> RuleSet:
    return load_dir(write_rules(tmp / "rules", rules))


def engine(
    tmp: Path,
    clock: FakeClock,
    tt: Timetable,
    rules: dict[str, list[dict[str, Any]]] | None = None,
    store: sa.Engine | None = None,
) -> Engine:
    """A restored engine on a fresh (or the given) store: SQLite, or a new database on the PostgreSQL
    server named by ``EXAMWATCH_TEST_PG`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432``)."""
    store = store or open_store(fresh_store_url(tmp))
    eng = Engine(store, World(inventory(), tt), ruleset(tmp, rules), clock, grace_s=0, tick_s=0.5)
    eng.restore()
    return eng


_PG: list[Postgres] = []


def _pg_server() -> str | None:
    """``EXAMWATCH_TEST_PG``: a server URL, or ``start`` for a cluster of the tests' own (scripts/test)."""
    server = os.environ.get("EXAMWATCH_TEST_PG")
    if server != "start":
        return server
    if not _PG:
        _PG.append(Postgres())
        _PG[0].start()
        atexit.register(_PG[0].stop)
    return _PG[0].url("").rstrip("/")


def fresh_store_url(tmp: Path) -> str:
    server = _pg_server()
    if not server:
        return f"sqlite:///{tmp / 'state.db'}"
    name = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return f"{server}/{name}"


def alarms(store: sa.Engine, where: str = "1=1") -> list[dict[str, Any]]:
    with store.connect() as conn:
        q = sa.text(f"SELECT * FROM alarm WHERE {where} ORDER BY id")
        return [dict(r) for r in conn.execute(q).mappings()]


def transitions(store: sa.Engine) -> list[dict[str, Any]]:
    with store.connect() as conn:
        q = "SELECT t.*, a.rule, a.subject FROM alarm_transition t JOIN alarm a ON a.id = t.alarm_id ORDER BY t.id"
        return [dict(r) for r in conn.execute(sa.text(q)).mappings()]


def healthy(kind: str, bands: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Fields of a healthy report of ``kind`` (enough for every rule in TEST_RULES)."""
    return {
        "jammer": {"on": True, "rf_dbm": dict.fromkeys(bands, 27.0), "temperature_c": 40.0, "fault_code": 0},
        "camera": {"recording": True, "video_loss": False, "tamper": False},
        "power": {"mains_v": 220.0, "on_ups": False},
        "gate": {"passes": 30, "face_match_failures": 0},
        "detector": {"battery_pct": 90.0, "self_test": "pass"},
    }[kind]


def beat(
    eng: Engine,
    now: float,
    skip: frozenset[str] | set[str] = frozenset(),
    sites: set[str] | None = None,
    **over: dict[str, Any],
) -> None:
    """Every device (of ``sites``, not in ``skip``) reports healthy at ``now``.

    ``over`` maps a device id with ``_`` for ``-`` (``S01_R01_JAM1``) to fields that differ.
    """
    w = eng.world
    for dev, ref in w.devices.items():
        if dev in skip or (sites is not None and ref.site not in sites):
            continue
        fields = {**healthy(ref.kind, w.specs[dev].bands), **over.get(dev.replace("-", "_"), {})}
        eng.handle(observe(w, dev, now, **fields))


class RulesProcess:
    """``examwatch rules`` as a child process on a Stack's broker and database, with its own store."""

    def __init__(
        self,
        stack: Any,
        tt: Timetable,
        rules: dict[str, list[dict[str, Any]]] | None = None,
        *,
        rules_dir: Path | None = None,
        clock: dict[str, Any] | None = None,
        **rules_settings: Any,
    ) -> None:
        """``rules`` (TEST_RULES by default) are written for it, unless ``rules_dir`` names a rules
        directory to run (the shipped one); ``clock`` is a ``[clock]`` section (a drill clock)."""
        self.stack = stack
        root = stack.root / "rules-engine"
        root.mkdir(exist_ok=True)
        (root / "timetable.yaml").write_text(timetable_yaml(tt))
        self.rules_dir = rules_dir or write_rules(root / "rules", rules)
        self.store_url = f"sqlite:///{root / 'state.db'}"
        doc: dict[str, Any] = {
            "secret": stack.secret,
            "inventory": str(stack.inventory_path),
            "timetable": str(root / "timetable.yaml"),
            "mqtt": {"port": stack.mqtt_port},
            "influx": {"url": stack.influx_server.url, "database": stack.db},
            "store": {"url": self.store_url},
            "rules": {
                "rules_dir": str(self.rules_dir),
                "restart_grace_s": 1.0,
                "tick_s": 0.2,
                **rules_settings,
            },
        }
        if clock is not None:
            doc["clock"] = clock
        self.config = root / "examwatch.toml"
        self.config.write_text(_toml(doc))
        self.cmd = [EXAMWATCH, "rules", "--config", str(self.config)]
        self.root = root
        self.proc: Any = None
        self.store = open_store(self.store_url)

    def start(self) -> None:
        log = self.root / "rules.out"
        mark = log.stat().st_size if log.exists() else 0
        self.proc = subprocess.Popen(self.cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rules exited: {self.log()[-2000:]}")
            return "connected (session present" in log.read_bytes()[mark:].decode(errors="replace")

        wait_for(up, 30, "the rules engine to connect")

    def log(self) -> str:
        return (self.root / "rules.out").read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = 15) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(10)  # SIGUSR1: the engine prints its threads' stacks to its log
                with contextlib.suppress(TimeoutError):  # the log is shown either way
                    wait_for(lambda: "Current thread" in self.log(), 5, "the engine's stacks")
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"the engine did not stop in 20 s; its log ends:\n{self.log()[-6000:]}") from None
        self.proc = None

    def cli(self, *args: str) -> Any:
        return subprocess.run([*self.cmd, *args], capture_output=True, text=True, timeout=60, check=False)


class Heartbeat:
    """A background publisher: every device of ``sites`` reports every ``interval_s`` through its
    site gateway, except devices in ``skip``; ``over[device]`` changes fields of its reports."""

    def __init__(self, stack: Any, sites: set[str] | None = None, interval_s: float = 0.3) -> None:
        self.stack = stack
        self.sites = set(sites or {s.id for s in stack.inventory.sites})
        self.skip: set[str] = set()
        self.over: dict[str, dict[str, Any]] = {}
        self.interval_s = interval_s
        self.rounds = 0
        self.last_sent: dict[str, float] = {}
        self._stop = threading.Event()
        self._gw = {s.id: stack.gateway(s.id) for s in stack.inventory.sites}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for site in sorted(self.sites):
                msgs = [
                    (device_topic(self.stack, dev), telemetry(dev, ref.kind, **self.over.get(dev, {})))
                    for dev, ref in self.stack.inventory.devices.items()
                    if ref.site == site and dev not in self.skip
                ]
                publish_all(self._gw[site], msgs)
                sent_at = time.time()
                self.last_sent.update(
                    (dev, sent_at)
                    for dev, ref in self.stack.inventory.devices.items()
                    if ref.site == site and dev not in self.skip
                )
            self.rounds += 1
            self._stop.wait(self.interval_s)

    def wait_rounds(self, n: int) -> None:
        target = self.rounds + n
        wait_for(lambda: self.rounds >= target, 30, f"{n} heartbeat rounds")


ROOT = Path(__file__).resolve().parents[1]
SHIPPED_RULES = ROOT / "config" / "rules"


def shipped_engine(tmp: Path, clock: FakeClock, tt: Timetable, *, inv: Inventory | None = None,
                   rules_dir: Path = SHIPPED_RULES, **kw: Any) -> Engine:
    """A restored engine running the shipped rules (or ``rules_dir``) on a fresh store."""
    store = open_store(fresh_store_url(tmp))
    eng = Engine(store, World(inv or inventory(), tt), load_dir(rules_dir), clock, grace_s=0, tick_s=1.0, **kw)
    eng.restore()
    return eng


class SimDay:
    """The simulator's own devices (``simulators.behaviour``: jammers switched by the timetable, gate
    surges, doors, batteries) fed straight into ``eng`` through the real intake, on a FakeClock.

    Every device reports once per ``interval_s`` at its own random phase, stamped with the time it
    is due, and is received ``delay_s`` later. ``over[device](payload, t)`` may change a report
    (return None to drop it). Events go through the intake too."""

    def __init__(self, eng: Engine, clock: FakeClock, *, interval_s: int = 30, delay_s: float = 0.05,
                 seed: int = 1, skip: frozenset[str] | set[str] = frozenset()) -> None:
        self.eng, self.clock, self.interval_s, self.delay_s = eng, clock, interval_s, delay_s
        self.rng = random.Random(seed)
        self.intake = Intake(eng.world)
        self.over: dict[str, Any] = {}
        self.sims: list[DeviceSim] = []
        self.days: dict[str, SiteDay] = {}
        for site in eng.world.inventory.sites:
            self.days[site.id] = SiteDay.build(eng.world.timetable, site)
            for d in site.devices:
                if d.id not in skip:
                    self.sims.append(DeviceSim(d, site.id, self.rng.uniform(0, interval_s)))
        self.due = {s.id: clock.now + s.phase for s in self.sims}
        self.reports = 0

    def run(self, until: float, step_s: float = 1.0, commit: bool = True) -> None:
        """Advance the clock to ``until`` in steps, delivering every report due, running the engine's timers."""
        while self.clock.now < until:
            self.clock.now = min(until, self.clock.now + step_s)
            ready = sorted((t, s) for s in self.sims if (t := self.due[s.id]) + self.delay_s <= self.clock.now)
            for t, sim in ready:
                self.due[sim.id] = t + self.interval_s
                payload, events = step(sim, t, self.days[sim.site], self.rng, self.interval_s)
                if sim.id in self.over:
                    payload = self.over[sim.id](payload, t)
                    if payload is None:
                        continue
                for channel, body in [("telemetry", payload), *(("event", e) for e in events)]:
                    got = self.intake.observe(sim.prefix + channel, json.dumps(body).encode(), t + self.delay_s)
                    if not isinstance(got, Observation):
                        raise AssertionError(f"the intake refused {sim.id}'s {channel}: {got}")
                    self.eng.handle(got)
                self.reports += 1
            self.eng.run_due()
            if commit:
                self.eng.commit()
