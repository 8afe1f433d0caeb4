"""A drill scored against the state store gets all four times: detected, notified, acknowledged, cleared."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from drills import scenario as sc
from drills.evidence import FaultRun
from drills.store_source import StoreAlarms
from examwatch.clock import DrillClock
from examwatch.store import Alarm, Transition, open_store, writing
from examwatch.store.notify_models import Notification

T0 = 1_800_000_000.0
PWR = "S01-VAULT-PWR1"


def _ns(dt: float) -> int:
    return int((T0 + dt) * 1e9)


def _run() -> FaultRun:
    fault = sc.MainsLost(device=PWR, at="-50m", duration="5m")
    return FaultRun(fault, fault.expected("power"), T0, T0 + 300, "S01", PWR, DrillClock(T0, T0), 30, 300)


def test_store_source_reads_alarm_transitions_and_the_first_sms(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    with writing(store) as conn:
        alarm_id = conn.execute(sa.insert(Alarm.__table__).values(
            rule="power_mains_lost", subject=PWR, subject_type="device", site="S01", severity="critical",
            state="resolved", active=False, drill=True, message="市电中断", opened_ns=_ns(35), updated_ns=_ns(330), seq=4,
        )).inserted_primary_key[0]
        for seq, (state, dt, by) in enumerate(
            (("pending", 35, "rules"), ("firing", 40, "rules"), ("acknowledged", 90, "王主考"), ("resolved", 330, "rules")),
            start=1,
        ):
            conn.execute(sa.insert(Transition.__table__).values(
                alarm_id=alarm_id, seq=seq, state=state, severity="critical", at_ns=_ns(dt), by=by, comment="",
                message="", sent=True,
            ))
        for person, sent_dt, kind in (("chief-S01", 41.5, "alert"), ("office", 43.0, "alert"), ("chief-S01", 331, "all_clear")):
            conn.execute(sa.insert(Notification.__table__).values(
                alarm_id=alarm_id, cause=f"{alarm_id}.{kind}", kind=kind, level=1, person=person,
                address=f"1390100{len(person):04d}{int(sent_dt)}", text="【演练】…", drill=True, status="sent",
                attempts=1, created_ns=_ns(40), next_try_ns=_ns(40), sent_ns=_ns(sent_dt), result="0: Accepted",
            ))
    obs = StoreAlarms(store).observe(_run())
    assert (obs.detected_at, obs.notified_at, obs.acked_at, obs.cleared_at) == (T0 + 40, T0 + 41.5, T0 + 90, T0 + 330)
    assert "marked drill" in obs.evidence
    assert "3 SMS sent" not in obs.evidence  # the all-clear is not a notification of the fault
    assert "2 SMS sent" in obs.evidence


def test_store_source_without_an_alarm_says_unseen(tmp_path: Path) -> None:
    obs = StoreAlarms(open_store(f"sqlite:///{tmp_path / 'state.db'}")).observe(_run())
    assert obs.detected_at is None
    assert "no power_mains_lost alarm" in obs.evidence
