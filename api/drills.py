"""Drills started through the API: each runs ``examwatch drill run`` as a child process.

A drill is a directory under ``drills_dir`` named by its id, holding ``drill.json`` (what was
started, by whom, and the exit code once known), ``drill.log`` (the command's output) and
``report.json`` (the scored report the command writes). The directory is the record, so the
list survives an API restart; a drill whose process this API no longer knows and that left no
exit code is "lost".
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from examwatch.settings import ApiSettings

META = "drill.json"
REPORT = "report.json"
LOG = "drill.log"


@dataclass
class DrillRecord:
    id: str
    scenario: str
    speed: float
    started_ns: int
    started_by: str
    exit_code: int | None = None


class Drills:
    """Start drills and read their records."""

    def __init__(self, cfg: ApiSettings, config_path: Path | None) -> None:
        self.dir = cfg.drills_dir
        self.scenarios_dir = cfg.scenarios_dir
        self.command = cfg.drill_command or [str(Path(sys.executable).parent / "examwatch"), "drill", "run"]
        self.config_path = config_path
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def scenarios(self) -> list[str]:
        """Scenario names that may be started (files in scenarios_dir, without .yaml)."""
        if not self.scenarios_dir.is_dir():
            return []
        return sorted(p.stem for p in self.scenarios_dir.glob("*.yaml"))

    def start(self, scenario: str, speed: float, by: str) -> DrillRecord:
        """Start ``scenario``; KeyError when no such scenario file exists."""
        path = self.scenarios_dir / f"{scenario}.yaml"
        if scenario not in self.scenarios():
            raise KeyError(scenario)
        now = time.time_ns()
        rec = DrillRecord(f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}", scenario, speed, now, by)
        home = self.dir / rec.id
        home.mkdir(parents=True)
        self._save(rec)
        cmd = [*self.command, str(path), "--speed", str(speed), "--json", str(home / REPORT), "--quiet"]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        with (home / LOG).open("wb") as log:
            proc = subprocess.Popen(cmd,  # noqa: S603 - our command; the scenario is a file we listed
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with self._lock:
            self._running[rec.id] = proc
        threading.Thread(target=self._wait, args=(rec, proc), daemon=True, name=f"drill-{rec.id}").start()
        return rec

    def _wait(self, rec: DrillRecord, proc: subprocess.Popen[bytes]) -> None:
        rec.exit_code = proc.wait()
        self._save(rec)
        with self._lock:
            self._running.pop(rec.id, None)

    def _save(self, rec: DrillRecord) -> None:
        tmp = self.dir / rec.id / f".{META}.tmp"
        tmp.write_text(json.dumps(asdict(rec)))
        tmp.replace(self.dir / rec.id / META)

    def get(self, drill_id: str) -> tuple[DrillRecord, str, bool]:
        """The record, its state (running, passed, failed, lost) and whether a report exists. KeyError if none."""
        meta = self.dir / drill_id / META
        if "/" in drill_id or drill_id.startswith(".") or not meta.is_file():
            raise KeyError(drill_id)
        rec = DrillRecord(**json.loads(meta.read_text()))
        with self._lock:
            running = rec.id in self._running
        if rec.exit_code is not None:
            state = "passed" if rec.exit_code == 0 else "failed"
        else:
            state = "running" if running else "lost"
        return rec, state, (self.dir / drill_id / REPORT).is_file()

    def list(self) -> list[tuple[DrillRecord, str, bool]]:
        """Every drill, newest first."""
        if not self.dir.is_dir():
            return []
        ids = sorted((p.name for p in self.dir.iterdir() if (p / META).is_file()), reverse=True)
        return [self.get(i) for i in ids]

    def report(self, drill_id: str) -> dict[str, Any] | None:
        """The drill's scored report, None while there is none. KeyError when there is no such drill."""
        self.get(drill_id)
        path = self.dir / drill_id / REPORT
        return json.loads(path.read_text()) if path.is_file() else None

    def log_tail(self, drill_id: str, size: int = 4000) -> str:
        data = (self.dir / drill_id / LOG).read_bytes()
        return data[-size:].decode(errors="replace")

    def stop_all(self) -> None:
        """Terminate drills still running (at API shutdown) and wait for them briefly."""
        with self._lock:
            procs = list(self._running.values())
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
