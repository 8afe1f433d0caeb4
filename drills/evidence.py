"""Where a drill looks for what the backend saw, behind one small interface.

``AlarmSource.observe(fault)`` answers when the fault was detected, notified, acknowledged and
cleared (or None for each that did not happen). Three sources exist:

- :class:`IngestEvidence` (the default: it needs only ingest): what ingest recorded in InfluxDB;
  it scores the data path, not the rules engine. A value fault is seen when the faulty readings
  are stored; silence when the device (or site) has no points in the fault's window, seen once
  two reports are missed; a firmware bug or a rogue device when ``ingest_reject`` holds their
  messages with the matching reason.
  Nobody is notified and nobody acknowledges, so those times stay empty.
- ``StoreAlarms`` (``drills.store_source``): the state store, where the rules engine
  keeps its alarms and the notifier its outbox; the only source that fills in all four times.
- :class:`InfluxAlarms`: the rules engine's ``alarm`` measurement (tags rule, severity, site,
  subject, drill; fields state, active, message), matched by the fault's expected rule and
  subject (a device; the site for a network cut or a rogue device), drill-marked or not (the
  evidence says which). The rules engine stamps alarms with
  its own wall clock, so this source is meaningful at ``--speed 1``, where simulated time is
  wall time.

Times are simulated epoch seconds. Points stamped by ingest's receive time (rejections, device
status) are mapped back to simulated time with the drill's clock.
"""

# ruff: noqa: S608 - measurement and field names come from the contract; values are bound ($device)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from drills import scenario as sc
from examwatch.clock import DrillClock
from examwatch.influx import Influx
from examwatch.kinds import KINDS


@dataclass(frozen=True)
class FaultRun:
    """A fault as it ran: its spec, its simulated window, and the drill's clock and cadence."""

    fault: sc.Fault
    expect: sc.Expect
    start: float
    end: float
    site: str
    subject: str
    clock: DrillClock
    interval_s: int
    tail_s: float


@dataclass(frozen=True)
class Observation:
    detected_at: float | None
    notified_at: float | None = None
    acked_at: float | None = None
    cleared_at: float | None = None
    evidence: str = ""


class AlarmSource(Protocol):
    name: str

    def observe(self, run: FaultRun) -> Observation:
        """What the backend did about this fault (times in simulated epoch seconds, or None)."""
        ...


Check = Callable[[Any], bool]
_KIND_MEASUREMENTS = ",".join(f'"{k}"' for k in KINDS)
_MALFORMED_REASONS = ("not_json", "schema", "non_finite", "not_utf8")


def _ms(t: float) -> int:
    return int(t * 1000)


class IngestEvidence:
    """Scores a fault against what ingest stored in InfluxDB (see the module docstring)."""

    name = "ingest evidence in InfluxDB (rejections, silence, faulty values); the rules engine is not scored"

    def __init__(self, influx: Influx) -> None:
        self.influx = influx

    def observe(self, run: FaultRun) -> Observation:  # noqa: PLR0911 - one answer per fault type
        f = run.fault
        match f:
            case sc.MainsLost():
                return self._values(run, "power", "mains_v", lambda v: v < 100, lambda v: v >= 180)
            case sc.BandDown():
                limit = f.dbm + 3
                return self._values(run, "jammer", f"rf_dbm_{f.band.value}", lambda v: v <= limit, lambda v: v > limit)
            case sc.Tamper():
                return self._values(run, "camera", "tamper", lambda v: v is True, lambda v: v is False)
            case sc.FaceMatchSurge():
                floor = max(2.0, f.per_minute * run.interval_s / 60 / 2)
                return self._values(run, "gate", "face_match_failures", lambda v: v >= floor, lambda v: v < floor)
            case sc.BatteryFlat():
                return self._values(run, "detector", "battery_pct", lambda v: v <= 5, lambda v: v > 5)
            case sc.ClockDrift():
                return self._drift(run, abs(f.offset.total_seconds()))
            case sc.Offline():
                return self._silence(run, "device")
            case sc.NetworkCut():
                return self._silence(run, "site")
            case sc.Malformed():
                reasons = " OR ".join(f"\"reason\" = '{r}'" for r in _MALFORMED_REASONS)
                return self._rejects(run, f.device, f"({reasons})", cleared_by_points=True)
            case sc.RogueDevice():
                return self._rejects(run, f.device, "\"reason\" = 'unknown_device'", cleared_by_points=False)

    def _window(self, start: float, end: float) -> str:
        return f"time >= {_ms(start)}ms AND time < {_ms(end)}ms"

    def _values(self, run: FaultRun, measurement: str, field: str, bad: Check, good: Check) -> Observation:
        device = run.subject
        rows = self.influx.rows(
            f'SELECT "{field}" FROM "{measurement}" WHERE "device" = $device AND "drill" = \'true\' AND '
            + self._window(run.start, run.end + run.tail_s),
            {"device": device},
        )
        faulty = [r for r in rows if r["time"] < _ms(run.end) and r[field] is not None and bad(r[field])]
        if not faulty:
            return Observation(None, evidence=f"no faulty {field} stored for {device} ({len(rows)} points)")
        cleared = next((r["time"] / 1000 for r in rows if r["time"] >= _ms(run.end) and good(r[field])), None)
        return Observation(faulty[0]["time"] / 1000, cleared_at=cleared,
                           evidence=f"{len(faulty)} {measurement} points with faulty {field}, first {faulty[0][field]}")

    def _drift(self, run: FaultRun, drift_s: float) -> Observation:
        rows = self.influx.rows(
            f'SELECT "skew_ms" FROM {_KIND_MEASUREMENTS} WHERE "device" = $device AND '
            + self._window(run.start - drift_s, run.end + drift_s + run.tail_s),
            {"device": run.subject},
        )
        # Device time minus the simulated time at which ingest received it: the clock's error.
        offsets = [(r["time"] / 1000, r["time"] / 1000 - run.clock.at_wall((r["time"] + r["skew_ms"]) / 1000))
                   for r in rows]
        off = [(t, o) for t, o in offsets if abs(o) >= drift_s / 2]
        if not off:
            return Observation(None, evidence=f"no point of {run.subject} with a clock off by ≥ {drift_s / 2:.0f} s")
        seen = off[0][0] - off[0][1]  # when it was received, in simulated time
        last_bad = max(t for t, _ in off)
        cleared = next((t for t, o in offsets if t > last_bad and abs(o) < drift_s / 2), None)
        return Observation(seen, cleared_at=cleared,
                           evidence=f"{len(off)} points with the clock off by {off[0][1]:+.0f} s")

    def _silence(self, run: FaultRun, tag: str) -> Observation:
        rows = self.influx.rows(
            f'SELECT "skew_ms" FROM {_KIND_MEASUREMENTS} WHERE "{tag}" = $subject AND "drill" = \'true\' AND '
            + self._window(run.start - 3 * run.interval_s, run.end + run.tail_s),
            {"subject": run.subject},
        )
        times = sorted(r["time"] / 1000 for r in rows)
        inside = [t for t in times if run.start <= t < run.end]
        if inside:
            return Observation(None, evidence=f"{len(inside)} points stored during the silence")
        if run.end - run.start < 2 * run.interval_s:
            return Observation(None, evidence="the fault is shorter than two reports: silence cannot be told")
        before = [t for t in times if t < run.start]
        detected = (before[-1] if before else run.start) + 2 * run.interval_s
        cleared = next((t for t in times if t >= run.end), None)
        return Observation(detected, cleared_at=cleared,
                           evidence=f"no points for {(run.end - run.start) / 60:.0f} min, {len(times)} around it")

    def _rejects(self, run: FaultRun, device: str, reason: str, *, cleared_by_points: bool) -> Observation:
        wall = run.clock.wall_at
        rows = self.influx.rows(
            f'SELECT "reason", "device" FROM "ingest_reject" WHERE "device" = $device AND {reason} AND '
            + self._window(wall(run.start) - 1, wall(run.end + run.tail_s) + 5),
            {"device": device},
        )
        if not rows:
            return Observation(None, evidence=f"no ingest_reject for {device}")
        first = run.clock.at_wall(rows[0]["time"] / 1000)
        reasons = sorted({r["reason"] for r in rows})
        cleared: float | None
        if cleared_by_points:  # valid reports again after the fault
            cleared = self._first_point(device, run.end)
        else:
            last = run.clock.at_wall(rows[-1]["time"] / 1000)
            cleared = last + run.interval_s if last < run.end + run.interval_s else None
        return Observation(first, cleared_at=cleared, evidence=f"{len(rows)} rejections ({', '.join(reasons)})")

    def _first_point(self, device: str, after: float) -> float | None:
        rows = self.influx.rows(f'SELECT first("skew_ms") FROM {_KIND_MEASUREMENTS} WHERE "device" = $device AND '
                                f"time >= {_ms(after)}ms", {"device": device})
        return min(r["time"] for r in rows) / 1000 if rows else None


class InfluxAlarms:
    """Scores a fault against the rules engine's ``alarm`` measurement (off by default)."""

    name = "alarms in InfluxDB measurement alarm (the rules engine)"

    def __init__(self, influx: Influx) -> None:
        self.influx = influx

    def observe(self, run: FaultRun) -> Observation:
        expect = run.expect
        rows = self.influx.rows(
            'SELECT "state", "active", "drill" FROM "alarm" WHERE "rule" = $rule AND "subject" = $subject AND '
            f"time >= {_ms(run.start - 60)}ms AND time < {_ms(run.end + run.tail_s)}ms",
            {"rule": expect.rule, "subject": run.subject},
        )
        # pending (the condition has not yet held for the rule's `for`) is not yet an alarm
        firing = [r for r in rows if r["active"] and r["state"] != "pending"]
        if not firing:
            return Observation(None, evidence=f"no {expect.rule} alarm for {run.subject}")
        raised = firing[0]["time"] / 1000
        # Silence carries no drill flag, so an absence alarm during a drill may be a real one.
        marked = "marked drill" if firing[0].get("drill") == "true" else "NOT marked drill"

        def first(states: tuple[str, ...]) -> float | None:
            return next((r["time"] / 1000 for r in rows if r["time"] / 1000 >= raised and r["state"] in states), None)

        cleared = next((r["time"] / 1000 for r in rows if r["time"] / 1000 > raised and r["active"] is False), None)
        return Observation(raised, first(("notified",)), first(("acknowledged", "acked")), cleared,
                           evidence=f"{len(rows)} alarm points ({marked}), states {sorted({r['state'] for r in rows})}")
