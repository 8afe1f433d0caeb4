"""Realistic readings per device kind, as a device would send them (plain JSON payloads).

These are a device's steady readings; :mod:`simulators.behaviour` moves them with the
timetable (jammers on and off, gate surges, battery drain). A simulator is a device seen from
outside: it knows the contract (topics, payload fields) and nothing of ingest or rules.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from examwatch.inventory import Device

Payload = dict[str, Any]
DB_VERSION = "2026.06.01-1"
RF_OFF_DBM = -60.0  # the measurement floor: what a band reads with its amplifier off


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth below 30, normal approximation above): arrivals in an interval."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def gate(d: Device, ts: int, rng: random.Random, interval_s: int, passes: int | None = None) -> Payload:
    if passes is None:
        passes = rng.randint(0, 3 * interval_s)
    return {
        "ts": ts, "device": d.id, "interval_s": interval_s, "passes": passes,
        "face_match_failures": poisson(rng, passes * 0.01), "liveness_failures": poisson(rng, passes * 0.003),
        "queue_length": min(5000, passes * 30 // max(interval_s, 1)), "db_version": DB_VERSION,
        "temperature_c": round(rng.gauss(31, 1), 1),
    }


def jammer(d: Device, ts: int, rng: random.Random, interval_s: int, on: bool = True) -> Payload:
    return {
        "ts": ts, "device": d.id, "on": on, "mode": "schedule",
        "rf_dbm": {b.value: round(rng.gauss(27, 0.4), 1) if on else RF_OFF_DBM for b in d.bands},
        "vswr": round(rng.uniform(1.1, 1.4), 2),
        "temperature_c": round(rng.gauss(42 if on else 30, 1.5), 1), "fault_code": 0,
    }


def detector(
    d: Device, ts: int, rng: random.Random, interval_s: int,
    *, battery: float | None = None, passes: int | None = None,
) -> Payload:
    p: Payload = {"ts": ts, "device": d.id, "interval_s": interval_s, "self_test": "pass"}
    if d.form is not None and d.form.value == "walkthrough":
        p["passes"] = rng.randint(0, 2 * interval_s) if passes is None else passes
        p["alarms"] = poisson(rng, p["passes"] * 0.02)
        p["sensitivity"] = 60
    else:
        p["alarms"] = poisson(rng, 0.05 * interval_s / 60)
        p["battery_pct"] = round(rng.uniform(60, 100) if battery is None else battery, 1)
    return p


def camera(d: Device, ts: int, rng: random.Random, interval_s: int) -> Payload:
    return {
        "ts": ts, "device": d.id, "recording": True, "fps": round(rng.gauss(25, 0.2), 2),
        "bitrate_kbps": round(rng.gauss(4096, 80), 1), "video_loss": False, "tamper": False,
        "nvr_used_pct": 41.5, "resolution": "1920x1080",
    }


def power(d: Device, ts: int, rng: random.Random, interval_s: int, door_open: bool = False) -> Payload:
    # 220 V ± 5 %: a normal distribution around 220 V, clipped to the band.
    return {
        "ts": ts, "device": d.id, "mains_v": round(min(231.0, max(209.0, rng.gauss(220, 3))), 1),
        "current_a": round(rng.uniform(2, 4), 2), "frequency_hz": round(rng.gauss(50, 0.02), 2),
        "on_ups": False,
        "ups_battery_pct": 100.0, "ups_minutes_left": 150.0, "temperature_c": round(rng.gauss(22, 0.5), 1),
        "humidity_pct": round(rng.gauss(45, 2), 1), "door_open": door_open,
    }


#: Steady readings per kind, ``(device, ts_ms, rng, interval_s) -> payload``.
TELEMETRY: dict[str, Callable[[Device, int, random.Random, int], Payload]] = {
    "gate": gate, "jammer": jammer, "detector": detector, "camera": camera, "power": power,
}
