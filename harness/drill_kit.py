"""A drill's own stack on a drill clock: broker, ingest, rules, notifier, API, Kannel with fakesmsc.

Every service reads the same settings file, whose ``[clock]`` puts the exam day's first moment of
the scenario a little ahead of the wall (``lead_s``) and runs it ``speed`` times faster; the
shipped timetable, rules and roster are used unless a test gives its own. The drill itself is
``examwatch drill run`` as a child process, scored from the stores and fakesmsc's output.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drills import scenario as sc
from drills.plan import build
from examwatch import roster as roster_mod
from examwatch.inventory import load as load_inventory
from examwatch.store import open_store
from examwatch.store.access import Role, create_token
from examwatch.timetable import load as load_timetable
from harness.api_stack import ApiProcess
from harness.notify_kit import ROOT, Processes
from harness.servers import Influx, Kannel, free_port
from harness.stack import EXAMWATCH, Stack, _toml

DISTRICT = ROOT / "config" / "district.yaml"


def _kannel(root: Path, api_url: str, secret: str) -> Kannel:
    """Kannel whose replies from phones reach the drill's API; a Kannel without a reply link (older
    harness) still carries every alert."""
    try:
        return Kannel(root, api_url=api_url, secret=secret)  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        return Kannel(root)


def clock_section(scenario: Path, speed: float, lead_s: float, timetable: Path = ROOT / "config" / "timetable.yaml",
                  inventory: Path = DISTRICT, roster: Path = ROOT / "config" / "roster.yaml") -> dict[str, Any]:
    """``[clock]`` for ``scenario``: its first moment, ``lead_s`` from now, at ``speed``."""
    inv, tt = load_inventory(inventory), load_timetable(timetable)
    scn = sc.load(scenario, inv, tt, roster_mod.load(roster))
    plan = build(scn, inv, tt, speed)
    wall = datetime.now(UTC) + timedelta(seconds=lead_s)
    return {"speed": speed, "start": datetime.fromtimestamp(plan.start, UTC).isoformat(),
            "wall_start": wall.isoformat()}


@dataclass
class DrillStack:
    """The whole chain for one drill, on one drill clock. ``start()`` then ``run()``; ``close()`` always."""

    root: Path
    influx_server: Influx
    db: str
    scenario: Path
    speed: float
    lead_s: float = 40.0  # the services start, then the drill connects its devices, before the clock runs
    rules_dir: Path = ROOT / "config" / "rules"
    roster: Path = ROOT / "config" / "roster.yaml"
    api: bool = True
    inventory: Path = DISTRICT
    notify: dict[str, Any] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.stack = Stack(self.root, self.influx_server, self.db, inventory_file=self.inventory)
        self.kannel = _kannel(self.root / "kannel", f"http://127.0.0.1:{self.api_port}", self.stack.secret)
        self.procs = Processes(self.stack)
        self.config = self.root / "drill.toml"
        self.store_url = f"sqlite:///{self.root / 'store.db'}"
        self.notify_store_url = f"sqlite:///{self.root / 'notify.db'}"
        self.api_proc: ApiProcess | None = None
        self.token = ""

    def write_config(self) -> None:
        doc = tomllib.loads(self.stack.config.read_text())
        rules_dir = self.root / "rules"
        shutil.copytree(self.rules_dir, rules_dir, dirs_exist_ok=True)
        doc.update(
            timetable=str(ROOT / "config" / "timetable.yaml"),
            store={"url": self.store_url},
            rules={"rules_dir": str(rules_dir), "restart_grace_s": 0},
            notify={"roster": str(self.roster), "store_url": self.notify_store_url,
                    "state_dir": str(self.root / "notify"), "kannel_url": self.kannel.sendsms_url,
                    "kannel_username": self.kannel.user, "kannel_password": self.kannel.password,
                    "retry_min_s": 0.5, "retry_max_s": 2.0, **self.notify},
            api={"port": self.api_port, "drills_dir": str(self.root / "drills")},
            clock=clock_section(self.scenario, self.speed, self.lead_s, inventory=self.inventory,
                                roster=self.roster),
        )
        self.config.write_text(_toml(doc))

    def start(self) -> None:
        """Kannel and the broker, then ingest, rules, the notifier and the API, all on the drill clock."""
        self.kannel.start()
        self.stack.mosquitto.start()
        self.write_config()
        # every service reads the drill's file; ingest is started the stack's way on it
        self.stack.config.write_text(self.config.read_text())
        self.stack.start_ingest()
        self.procs.start(self.config, "rules")
        self.procs.start(self.config, "notify")
        if self.api:
            _, self.token = create_token(open_store(self.store_url), "drill-admin", Role.ADMIN, "test")
            self.api_proc = ApiProcess(self.root / "logs", self.config, self.api_port)
            self.api_proc.start(timeout=30)

    @property
    def smsc_log(self) -> Path:
        return self.kannel.smsc.root / f"{self.kannel.smsc.name}.out"

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``examwatch drill run`` on the scenario with this stack's settings, SMS log and API."""
        cmd = [EXAMWATCH, "drill", "run", str(self.scenario), "--config", str(self.config), "--quiet",
               "--smsc-log", str(self.smsc_log), "--report", str(self.root / "drill.md"),
               "--json", str(self.root / "drill.json")]
        if self.api_proc is not None:
            cmd += ["--api-url", f"http://127.0.0.1:{self.api_port}", "--api-token", self.token]
        mo = getattr(self.kannel, "phones_port", None)
        if mo:
            cmd += ["--mo-smsc", f"127.0.0.1:{mo}"]
        return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, check=False)

    def close(self) -> None:
        if self.api_proc is not None:
            self.api_proc.stop()
        self.procs.kill_all()
        self.stack.close()
        self.kannel.stop()
