"""Device online state, telemetry field catalogue and site colours, without servers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.devstate import OFFLINE, DeviceState, DeviceStates, combine
from api.fields import telemetry_fields
from api.rollup import Rollup
from examwatch import sample
from examwatch.alarm import Severity, Subject
from examwatch.bands import Band
from examwatch.inventory import Inventory
from examwatch.kinds import KINDS
from examwatch.store import Readiness, open_store, writing
from examwatch.store.lifecycle import open_alarm
from examwatch.timetable import Paper, Timetable
from harness.servers import wait_for

S = 1_000_000_000
NOW = 1_800_000_000 * S


def test_online_needs_a_recent_report_and_no_later_offline() -> None:
    states = combine(
        telemetry={"fresh": (NOW - 10 * S, 120), "stale": (NOW - 301 * S, 5), "slow clock": (NOW - 400 * S, 399_000), "died": (NOW - 10 * S, 0),
                   "back": (NOW - 2 * S, 0)},
        status={"died": (NOW - 5 * S, False), "back": (NOW - 5 * S, False), "ghost": (NOW, True)},
        now_ns=NOW, offline_after_s=300)
    assert states["fresh"] == DeviceState(NOW - 10 * S, 120, None, None, True)
    assert not states["stale"].online
    assert states["slow clock"].online, "received 1 s ago: its clock is 399 s behind, which is the skew rule's business"
    assert not states["died"].online, "its last will came after its last report"
    assert states["back"].online, "it reported again after saying offline"
    assert not states["ghost"].online, "a retained 'online' without telemetry is not enough"
    assert OFFLINE.online is False


def test_field_catalogue_flattens_bands_and_knows_numbers() -> None:
    jammer = telemetry_fields("jammer")
    assert all(jammer[f"rf_dbm_{b.value}"] for b in Band)
    assert jammer["on"] is False
    assert jammer["mode"] is False
    assert jammer["skew_ms"] is True
    assert telemetry_fields("power")["mains_v"] is True
    assert telemetry_fields("power")["door_open"] is False
    for kind in KINDS:
        assert "ts" not in telemetry_fields(kind)
        assert "device" not in telemetry_fields(kind)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Inventory, sa.Engine]:
    inv = Inventory.model_validate(sample.district(formal=2, backup=0, rooms=2, name="单元区"))
    return inv, open_store(f"sqlite:///{tmp_path / 'store.db'}")


def _all_online(inv: Inventory) -> dict[str, DeviceState]:
    return {d: DeviceState(NOW, 0, True, NOW, True) for d in inv.devices}


def test_site_colours(world: tuple[Inventory, sa.Engine]) -> None:
    inv, store = world
    now = datetime.fromtimestamp(NOW / S, tz=UTC)
    paper = Paper(id="p1", subject="语文", start=now.replace(hour=23), end=now.replace(hour=23, minute=59))
    tt = Timetable(exam="e", papers=(paper,))
    states = _all_online(inv)

    def colours() -> dict[str, str]:
        with store.connect() as conn:
            r = Rollup(inv, tt, states, conn, now)
            return {s.id: r.site(s).status for s in inv.sites}

    assert colours() == {"S01": "green", "S02": "green"}
    states.pop("S01-R01-JAM1")
    assert colours() == {"S01": "amber", "S02": "green"}
    with writing(store) as conn:
        open_alarm(conn, "power_on_ups", Subject.device(inv.devices["S02-VAULT-PWR1"]), severity=Severity.CRITICAL,
                   message="ups", drill=False, at_ns=time.time_ns(), pending_for_s=0)
        conn.execute(sa.insert(Readiness.__table__).values(paper="p1", site="S01", room="_site", go=False,
                                                           detail="x", drill=False, at_ns=NOW, sent=True))
    assert colours() == {"S01": "red", "S02": "red"}
    with store.connect() as conn:
        s2 = Rollup(inv, tt, states, conn, now).site(inv.site("S02"))
    assert s2.alarms.critical == 1
    assert s2.next_paper is not None
    assert s2.next_paper.readiness.go is None


class _CountingInflux:
    """Stands in for InfluxDB's answer to the states query (a fake: only the call count matters here)."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()  # the second query waits for it, like a slow InfluxDB

    def query(self, q: str, params: dict[str, object], epoch: str) -> list[dict[str, object]]:
        if self.calls == 1:
            assert self.gate.wait(5)
        self.calls += 1
        return [{"series": [{"tags": {"device": "d"}, "columns": ["time", "skew_ms"], "values": [[NOW, self.calls]]}]},
                {}]


def test_snapshot_is_refreshed_behind_readers_and_before_them_when_old() -> None:
    influx = _CountingInflux()
    clock = {"now": NOW}
    states = DeviceStates(influx, lambda: ["S01"], 300, 24, 2.0, clock=lambda: clock["now"])  # type: ignore[arg-type]
    assert states.snapshot()["d"].skew_ms == 1
    clock["now"] += 1 * S
    assert states.snapshot()["d"].skew_ms == 1
    assert influx.calls == 1, "fresh enough: no query"
    clock["now"] += 2 * S
    assert states.snapshot()["d"].skew_ms == 1, "stale: the old snapshot is served while a thread refreshes"
    assert states.snapshot()["d"].skew_ms == 1
    influx.gate.set()
    wait_for(lambda: influx.calls == 2 and states.snapshot()["d"].skew_ms == 2, 5, "the background refresh")
    clock["now"] += 60 * S
    assert states.snapshot()["d"].skew_ms == 3, "too old to serve: refreshed before answering"
