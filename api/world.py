"""What the API serves from: settings, the store, InfluxDB, the inventory and timetable files."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import yaml

from api.devstate import DeviceStates
from api.guesses import Guesses
from api.problems import OnDisk, validate_with
from api.publisher import Publisher
from examwatch import inventory as inventory_mod
from examwatch import liveness
from examwatch import roster as roster_mod
from examwatch import timetable as timetable_mod
from examwatch.clock import WALL, Clock, now_ns
from examwatch.datafile import DataFileError
from examwatch.influx import Influx
from examwatch.inventory import Inventory
from examwatch.links import callback_key
from examwatch.roster import Roster
from examwatch.rulebook import files as rulebook
from examwatch.settings import Settings
from examwatch.store import open_store
from examwatch.timetable import Timetable


def write_yaml(path: Path, data: Any) -> None:
    """Replace ``path`` atomically with ``data`` as YAML (a reader sees the old or the new file, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, allow_unicode=True, sort_keys=False)
        f.flush()
        os.fsync(f.fileno())
    Path(tmp).replace(path)

T = TypeVar("T")
log = logging.getLogger("examwatch.api")


@dataclass
class World:
    settings: Settings
    config_path: Path | None
    store: sa.Engine
    influx: Influx
    inventory: Inventory
    timetable: Timetable
    states: DeviceStates
    clock: Clock = WALL
    notify_store: sa.Engine | None = None  # None: the notifier keeps its tables in ``store``
    publisher: Publisher | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.publisher is None:
            self.publisher = Publisher(self.settings)
        a = self.settings.api
        self.guesses = Guesses(self.clock, a.page_guesses, a.page_guess_window_s)
        self.timeouts: dict[str, float] = {}
        self.refresh_timeouts()

    def refresh_timeouts(self) -> None:
        """Each device's absence timeout from the rules files, so the wall calls a device offline when
        the rules engine would (examwatch.liveness); a broken rules directory keeps the last ones."""
        try:
            self.timeouts = liveness.absence_timeouts(rulebook.load_dir(self.settings.rules.rules_dir), self.inventory)
        except DataFileError as exc:
            log.warning("device timeouts not read from the rules files, keeping the last: %s", exc)

    @property
    def notify(self) -> sa.Engine:
        """The notifier's store: short codes, the outbox with its delivery reports, SMS replies."""
        return self.notify_store if self.notify_store is not None else self.store

    def now(self) -> datetime:
        """The time on the API's clock (a drill clock in a compressed drill), as an aware datetime."""
        return datetime.fromtimestamp(self.clock.now(), UTC)

    @property
    def secret(self) -> str:
        return self.settings.secret.get_secret_value()

    @property
    def callback_key(self) -> str:
        """What Kannel's calls carry (``k=``): see ``examwatch.kannel``."""
        return callback_key(self.secret)

    @classmethod
    def open(cls, settings: Settings, config_path: Path | None) -> World:
        """Open the store (migrated), InfluxDB, and load the inventory and timetable. Raises DataFileError."""
        influx = Influx(settings.influx, pool_size=8)
        a = settings.api
        inv = inventory_mod.load(settings.inventory)
        world: World
        clock = settings.clock.make()
        states = DeviceStates(influx, lambda: [s.id for s in world.inventory.sites], a.offline_after_s, a.lookback_h,
                              a.status_cache_s, clock=lambda: now_ns(clock), timeouts=lambda: world.timeouts)
        store = open_store(settings.store.url)
        own = settings.notify_store_url != settings.store.url
        notify_store = open_store(settings.notify_store_url) if own else None
        world = cls(settings, config_path, store, influx, inv, timetable_mod.load(settings.timetable), states,
                    clock, notify_store)
        return world

    def replace_inventory(self, inv: Inventory) -> None:
        """Write ``inv`` to the inventory file and serve it from now on (services read it at their start).

        Raises ValueError when the roster routes alarms of a site ``inv`` lacks: the notifier would
        refuse to start; change the roster first."""
        with self._lock:
            path = self.settings.notify.roster
            if path.exists():
                kept = {s.id for s in inv.sites}
                named = {site for route in _on_disk(roster_mod.load, path).routes for site in route.sites}
                if named - kept:
                    raise ValueError(f"the roster ({path.name}) routes alarms of sites this inventory lacks: "
                                     f"{', '.join(sorted(named - kept))}; change the roster first")
            write_yaml(self.settings.inventory, inv.model_dump(mode="json", exclude_defaults=True))
            self.inventory = inv
        self.refresh_timeouts()

    def replace_timetable(self, tt: Timetable) -> None:
        """Write ``tt`` to the timetable file and serve it from now on."""
        with self._lock:
            write_yaml(self.settings.timetable, tt.model_dump(mode="json", exclude_defaults=True))
            self.timetable = tt

    def rules_files(self) -> dict[str, rulebook.RulesFile]:
        """Every rules file (kind or ``site`` → its rules), as on disk. Raises DataFileError."""
        directory = self.settings.rules.rules_dir
        return {p.stem: rulebook.load_file(p) for p in sorted(directory.glob("*.yaml"))}

    def replace_rules(self, kind: str, rules: rulebook.RulesFile) -> None:
        """Check ``rules`` together with the other rules files (each name once, the site's silence
        timeout the shortest), then write ``<kind>.yaml``. Raises DataFileError naming the fault."""
        directory = self.settings.rules.rules_dir
        with self._lock:
            paths = [p for p in sorted(directory.glob("*.yaml")) if p.stem != kind]  # a broken kind.yaml is mended
            others = {p.stem: _on_disk(rulebook.load_file, p) for p in paths}
            rulebook.combine({**others, kind: rules}, directory)
            write_yaml(directory / f"{kind}.yaml", rules.model_dump(mode="json", by_alias=True, exclude_defaults=True))
        self.refresh_timeouts()

    def roster(self) -> Roster:
        """The duty roster as on disk (its sites are checked against the inventory when it is
        saved, not here). Raises DataFileError."""
        return roster_mod.load(self.settings.notify.roster)

    def replace_roster(self, body: Roster) -> Roster:
        """Check ``body`` against the inventory (its routes' sites) and write the roster file; the
        notifier re-reads it on request, or at its next start. Raises RequestValidationError."""
        with self._lock:  # with the inventory it is checked against: a concurrent PUT /inventory waits
            roster = validate_with(Roster, body, {"sites": {s.id for s in self.inventory.sites}})
            write_yaml(self.settings.notify.roster, roster.model_dump(mode="json", exclude_defaults=True))
        return roster


def _on_disk(load: Callable[[Path], T], path: Path) -> T:
    try:
        return load(path)
    except DataFileError as exc:
        raise OnDisk(f"{exc}; repair that file first") from exc
