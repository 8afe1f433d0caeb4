"""A diagnostic source: did each fault's evidence reach InfluxDB through ingest? (``--source ingest``)

It scores the data path, not the rules engine or the notifier: a value fault is seen when the
faulty readings are stored; silence when the device (or site) has no points in the fault's
window, seen once two reports are missed; a firmware bug or a rogue device when
``ingest_reject`` holds their messages with the matching reason. Nobody is notified here, and
nothing can be said of false alarms: the alarm store and the SMS centre (``--source store``, the
default) are what people see.

Device points are stamped with the device's time; rejections and statuses with ingest's receive
time, on the settings' clock (``recv_to_clock`` maps them for a wall-clock ingest under a
compressed simulator).
"""

# ruff: noqa: S608 - measurement and field names come from the contract; values are bound ($device)

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drills import scenario as sc
from drills.plan import FaultPlan, Plan
from drills.report import ExpectationScore, FaultScore, Report
from drills.score import describe
from examwatch.influx import Influx
from examwatch.kinds import KINDS

Check = Callable[[Any], bool]
_KIND_MEASUREMENTS = ",".join(f'"{k}"' for k in KINDS)
_MALFORMED_REASONS = ("not_json", "schema", "non_finite", "not_utf8")
NAME = "ingest evidence in InfluxDB (rejections, silence, faulty values); the rules engine is not scored"


@dataclass(frozen=True)
class Observation:
    detected_at: float | None
    cleared_at: float | None = None
    evidence: str = ""


def _ms(t: float) -> int:
    return int(t * 1000)


class IngestEvidence:
    """Looks for each fault's evidence in what ingest stored (see the module docstring)."""

    def __init__(self, influx: Influx, interval: int, tail_s: float, recv_to_clock: Callable[[float], float],
                 clock_to_recv: Callable[[float], float], speed: float = 1.0) -> None:
        self.influx = influx
        self.speed = speed  # a skew fault's offset is scaled by it (drills.faults.ClockSkew)
        self.interval = interval
        self.tail_s = tail_s
        self.recv_to_clock = recv_to_clock
        self.clock_to_recv = clock_to_recv

    def observe(self, fp: FaultPlan) -> Observation:  # noqa: PLR0911, PLR0912 - one answer per fault type
        f = fp.fault
        match f:
            case sc.MainsLost():
                return self._values(fp, "power", "mains_v", lambda v: v < 100, lambda v: v >= 180)
            case sc.BandDown():
                limit = f.dbm + 3
                return self._values(fp, "jammer", f"rf_dbm_{f.band.value}", lambda v: v <= limit, lambda v: v > limit)
            case sc.JammerOff() | sc.JammerNotOn():
                return self._values(fp, "jammer", "on", lambda v: v is False, lambda v: v is True)
            case sc.Tamper():
                return self._values(fp, "camera", "tamper", lambda v: v is True, lambda v: v is False)
            case sc.VideoLoss():
                return self._values(fp, "camera", "video_loss", lambda v: v is True, lambda v: v is False)
            case sc.RecordingStopped():
                return self._values(fp, "camera", "recording", lambda v: v is False, lambda v: v is True)
            case sc.FaceMatchSurge():
                floor = max(1.0, f.share * f.passes_per_min * self.interval / 60 / 2)
                return self._values(fp, "gate", "face_match_failures", lambda v: v >= floor, lambda v: v < floor)
            case sc.BatteryFlat():
                return self._values(fp, "detector", "battery_pct", lambda v: v <= 5, lambda v: v > 5)
            case sc.ClockSkew():
                return self._skew(fp, f.offset.total_seconds() * self.speed)
            case sc.Offline():
                return self._silence(fp, "device")
            case sc.NetworkCut():
                return self._silence(fp, "site")
            case sc.Malformed():
                reasons = " OR ".join(f"\"reason\" = '{r}'" for r in _MALFORMED_REASONS)
                return self._rejects(fp, f.device, f"({reasons})", cleared_by_points=True)
            case sc.RogueDevice():
                return self._rejects(fp, f.device, "\"reason\" = 'unknown_device'", cleared_by_points=False)
        return Observation(None, evidence=f"no evidence check for {fp.type}")

    def _window(self, start: float, end: float) -> str:
        return f"time >= {_ms(start)}ms AND time < {_ms(end)}ms"

    def _values(self, fp: FaultPlan, measurement: str, field: str, bad: Check, good: Check) -> Observation:
        rows = self.influx.rows(
            f'SELECT "{field}" FROM "{measurement}" WHERE "device" = $device AND "drill" = \'true\' AND '
            + self._window(fp.start, fp.end + self.tail_s),
            {"device": fp.subject},
        )
        faulty = [r for r in rows if r["time"] < _ms(fp.end) and r[field] is not None and bad(r[field])]
        if not faulty:
            return Observation(None, evidence=f"no faulty {field} stored for {fp.subject} ({len(rows)} points)")
        cleared = next((r["time"] / 1000 for r in rows if r["time"] >= _ms(fp.end) and good(r[field])), None)
        return Observation(faulty[0]["time"] / 1000, cleared,
                           f"{len(faulty)} {measurement} points with faulty {field}, first {faulty[0][field]}")

    def _skew(self, fp: FaultPlan, offset_s: float) -> Observation:
        rows = self.influx.rows(
            f'SELECT "skew_ms" FROM {_KIND_MEASUREMENTS} WHERE "device" = $device AND '
            + self._window(fp.start - offset_s, fp.end + offset_s + self.tail_s),
            {"device": fp.subject},
        )
        # skew_ms is receive time minus device time; the device's error is its time minus the
        # drill-clock time at which it was received
        offsets = [(r["time"] / 1000, r["time"] / 1000 - self.recv_to_clock((r["time"] + r["skew_ms"]) / 1000))
                   for r in rows]
        off = [(t, o) for t, o in offsets if abs(o) >= abs(offset_s) / 2]
        if not off:
            return Observation(None, evidence=f"no point of {fp.subject} with its clock off by ≥ {offset_s / 2:.0f} s")
        seen = off[0][0] - off[0][1]  # when it was received, on the drill clock
        last_bad = max(t for t, _ in off)
        cleared = next((t for t, o in offsets if t > last_bad and abs(o) < abs(offset_s) / 2), None)
        return Observation(seen, cleared, f"{len(off)} points with the clock off by {off[0][1]:+.0f} s")

    def _silence(self, fp: FaultPlan, tag: str) -> Observation:
        rows = self.influx.rows(
            f'SELECT "skew_ms" FROM {_KIND_MEASUREMENTS} WHERE "{tag}" = $subject AND "drill" = \'true\' AND '
            + self._window(fp.start - 3 * self.interval, fp.end + self.tail_s),
            {"subject": fp.subject},
        )
        times = sorted(r["time"] / 1000 for r in rows)
        inside = [t for t in times if fp.start <= t < fp.end]
        if inside:
            return Observation(None, evidence=f"{len(inside)} points stored during the silence")
        if fp.end - fp.start < 2 * self.interval:
            return Observation(None, evidence="the fault is shorter than two reports: silence cannot be told")
        before = [t for t in times if t < fp.start]
        detected = (before[-1] if before else fp.start) + 2 * self.interval
        cleared = next((t for t in times if t >= fp.end), None)
        return Observation(detected, cleared, f"no points for {(fp.end - fp.start) / 60:.0f} min, "
                                              f"{len(times)} around it")

    def _rejects(self, fp: FaultPlan, device: str, reason: str, *, cleared_by_points: bool) -> Observation:
        rows = self.influx.rows(
            f'SELECT "reason", "device" FROM "ingest_reject" WHERE "device" = $device AND {reason} AND '
            + self._window(self.clock_to_recv(fp.start) - 1, self.clock_to_recv(fp.end + self.tail_s) + 5),
            {"device": device},
        )
        if not rows:
            return Observation(None, evidence=f"no ingest_reject for {device}")
        first = self.recv_to_clock(rows[0]["time"] / 1000)
        reasons = sorted({r["reason"] for r in rows})
        cleared: float | None
        if cleared_by_points:  # valid reports again after the fault
            after = self.influx.rows(f'SELECT first("skew_ms") FROM {_KIND_MEASUREMENTS} WHERE "device" = $device '
                                     f"AND time >= {_ms(fp.end)}ms", {"device": device})
            cleared = min(r["time"] for r in after) / 1000 if after else None
        else:
            last = self.recv_to_clock(rows[-1]["time"] / 1000)
            cleared = last + self.interval if last < fp.end + self.interval else None
        return Observation(first, cleared, f"{len(rows)} rejections ({', '.join(reasons)})")


def settle(influx: Influx, plan: Plan, timeout_s: float = 30.0) -> bool:
    """Wait until ingest has stored the drill's last reports (or ``timeout_s`` passes)."""
    wanted = int((plan.end - 2 * plan.interval) * 1000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if influx.rows(f"SELECT last(\"skew_ms\") FROM {_KIND_MEASUREMENTS} WHERE \"drill\" = 'true' AND "
                       f"time >= {wanted}ms"):
            return True
        time.sleep(0.25)
    return False


def report(plan: Plan, source: IngestEvidence) -> Report:
    """A report with one line per fault: its evidence found or not (no alarms, SMS or false alarms)."""
    faults = []
    for fp in plan.faults:
        obs = source.observe(fp)
        e = ExpectationScore(f"{fp.id}/evidence", "evidence in InfluxDB", "", fp.subject, fp.site, fp.start,
                             fp.end, fired_at=obs.detected_at, reached_at=obs.detected_at, message=obs.evidence,
                             cleared_at=obs.cleared_at)
        if obs.detected_at is None:
            e.problems.append(f"unseen: {obs.evidence}")
        faults.append(FaultScore(fp.id, fp.type, fp.site, fp.subject, fp.start, fp.end, describe(fp), [e]))
    return Report(plan.scenario.name, plan.scenario.title, NAME, plan.speed, plan.start, plan.end, faults,
                  tz=plan.tz())
