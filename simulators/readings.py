"""Realistic readings per device kind, as a device would send them (plain JSON payloads).

A simulator is a device seen from outside: it knows the contract (topics, payload fields) and
nothing of ingest or rules.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from examwatch.inventory import Device

Payload = dict[str, Any]


def _gate(d: Device, ts: int, rng: random.Random, interval_s: int) -> Payload:
    passes = rng.randint(0, 3 * interval_s)
    return {
        "ts": ts,
        "device": d.id,
        "interval_s": interval_s,
        "passes": passes,
        "face_match_failures": rng.randint(0, max(passes // 20, 0)),
        "liveness_failures": 0,
        "queue_length": rng.randint(0, 40),
        "db_version": "2026.06.01-1",
        "temperature_c": round(rng.gauss(31, 1), 1),
    }


def _jammer(d: Device, ts: int, rng: random.Random, interval_s: int) -> Payload:
    return {
        "ts": ts,
        "device": d.id,
        "on": True,
        "mode": "schedule",
        "rf_dbm": {b.value: round(rng.gauss(27, 0.4), 1) for b in d.bands},
        "vswr": round(rng.uniform(1.1, 1.4), 2),
        "temperature_c": round(rng.gauss(42, 1.5), 1),
        "fault_code": 0,
    }


def _detector(d: Device, ts: int, rng: random.Random, interval_s: int) -> Payload:
    p: Payload = {"ts": ts, "device": d.id, "interval_s": interval_s, "self_test": "pass", "alarms": rng.randint(0, 1)}
    if d.form is not None and d.form.value == "walkthrough":
        p["passes"] = rng.randint(0, 2 * interval_s)
        p["sensitivity"] = 60
    else:
        p["battery_pct"] = round(rng.uniform(60, 100), 1)
    return p


def _camera(d: Device, ts: int, rng: random.Random, interval_s: int) -> Payload:
    return {
        "ts": ts,
        "device": d.id,
        "recording": True,
        "fps": round(rng.gauss(25, 0.2), 2),
        "bitrate_kbps": round(rng.gauss(4096, 80), 1),
        "video_loss": False,
        "tamper": False,
        "nvr_used_pct": 41.5,
        "resolution": "1920x1080",
    }


def _power(d: Device, ts: int, rng: random.Random, interval_s: int) -> Payload:
    return {
        "ts": ts,
        "device": d.id,
        "mains_v": round(rng.uniform(209, 231), 1),
        "current_a": round(rng.uniform(2, 4), 2),
        "frequency_hz": round(rng.gauss(50, 0.02), 2),
        "on_ups": False,
        "ups_battery_pct": 100.0,
        "ups_minutes_left": 150.0,
        "temperature_c": round(rng.gauss(22, 0.5), 1),
        "humidity_pct": round(rng.gauss(45, 2), 1),
        "door_open": False,
    }


TELEMETRY: dict[str, Callable[[Device, int, random.Random, int], Payload]] = {
    "gate": _gate,
    "jammer": _jammer,
    "detector": _detector,
    "camera": _camera,
    "power": _power,
}
