"""Each scenario fault as engine effects: what the faulty devices send instead of the truth."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from drills import scenario as sc
from examwatch.bands import EXAM_ROOM_BANDS
from examwatch.inventory import DetectorForm, Device
from examwatch.kinds import Kind
from simulators.behaviour import DeviceSim
from simulators.effects import Effect
from simulators.engine import Engine
from simulators.readings import Payload, poisson

BATTERY_FALL_S = 120.0  # a flat battery empties within two simulated minutes


@dataclass(eq=False)
class MainsLost(Effect):
    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        minutes = (t - self.start) / 60
        return {**payload, "mains_v": 0.0, "frequency_hz": 0.0, "on_ups": True,
                "ups_battery_pct": round(max(0.0, 100 - minutes * 100 / 150), 1),
                "ups_minutes_left": round(max(0.0, 150 - minutes), 1)}

    def events(self, payload: Payload, begins: bool) -> list[Payload]:
        return [_event(payload, event="mains", lost=begins)]


@dataclass(eq=False)
class BandDown(Effect):
    band: str = "n78"
    dbm: float = 0.0

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        return {**payload, "rf_dbm": {**payload["rf_dbm"], self.band: self.dbm}}


@dataclass(eq=False)
class Tamper(Effect):
    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        return {**payload, "tamper": True}

    def events(self, payload: Payload, begins: bool) -> list[Payload]:
        return [_event(payload, event="alert", alert="tamper", active=begins)]


@dataclass(eq=False)
class FaceMatchSurge(Effect):
    per_minute: float = 12.0
    rng: random.Random | None = None

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        rng = self.rng or random.Random(int(self.start))
        self.rng = rng
        extra = poisson(rng, self.per_minute * payload["interval_s"] / 60)
        return {**payload, "face_match_failures": payload["face_match_failures"] + extra,
                "passes": payload["passes"] + extra // 3}


@dataclass(eq=False)
class BatteryFlat(Effect):
    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        left = max(0.0, 1 - (t - self.start) / BATTERY_FALL_S)
        return {**payload, "battery_pct": round(payload["battery_pct"] * left, 1)}


@dataclass(eq=False)
class ClockDrift(Effect):
    offset_ms: int = 0

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        return {**payload, "ts": payload["ts"] + self.offset_ms}


@dataclass(eq=False)
class Malformed(Effect):
    style: sc.MalformedStyle = sc.MalformedStyle.TRUNCATED

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        text = json.dumps(payload, separators=(",", ":"))
        if self.style is sc.MalformedStyle.TRUNCATED:
            return text[: len(text) // 2].encode()
        if self.style is sc.MalformedStyle.BINARY:
            return b"\xff\xfe" + text.encode("utf-16-le")[:64]
        key = next(k for k, v in payload.items() if isinstance(v, float))
        if self.style is sc.MalformedStyle.NAN:
            return text.replace(f'"{key}":{json.dumps(payload[key])}', f'"{key}":NaN').encode()
        return json.dumps({**payload, key: "ERR"}).encode()


def _event(payload: Payload, **fields: object) -> Payload:
    out: Payload = {"ts": payload["ts"], "device": payload["device"], **fields}
    if payload.get("drill"):
        out["drill"] = True
    return out


def _rogue(fault: sc.RogueDevice, engine: Engine) -> DeviceSim:
    run = next(r for r in engine.sites if r.site.id == fault.site)
    extra: dict[str, object] = {}
    if fault.kind is Kind.JAMMER:
        extra["bands"] = EXAM_ROOM_BANDS
    if fault.kind is Kind.DETECTOR:
        extra["form"] = DetectorForm.HANDHELD
    spec = Device(id=fault.device, kind=fault.kind, room=run.site.rooms[0].id, **extra)
    return DeviceSim(spec, fault.site, 0.0)


def install(fault: sc.Fault, engine: Engine, start: float, end: float) -> None:
    """Attach ``fault``'s effects to the engine's devices for the simulated window ``[start, end)``."""
    if isinstance(fault, sc.NetworkCut):
        run = next(r for r in engine.sites if r.site.id == fault.site)
        for dev in run.devices:
            dev.effects.append(Effect(start, end, silence=True))
        return
    if isinstance(fault, sc.RogueDevice):
        engine.add_rogue(_rogue(fault, engine), start, end)
        return
    effect: Effect
    match fault:
        case sc.MainsLost():
            effect = MainsLost(start, end)
        case sc.BandDown():
            effect = BandDown(start, end, band=fault.band.value, dbm=fault.dbm)
        case sc.Offline():
            effect = Effect(start, end, silence=True, announce=True)
        case sc.Tamper():
            effect = Tamper(start, end)
        case sc.FaceMatchSurge():
            effect = FaceMatchSurge(start, end, per_minute=fault.per_minute)
        case sc.BatteryFlat():
            effect = BatteryFlat(start, end)
        case sc.ClockDrift():
            effect = ClockDrift(start, end, offset_ms=int(fault.offset.total_seconds() * 1000))
        case sc.Malformed():
            effect = Malformed(start, end, style=fault.style)
    engine.devices[fault.device].effects.append(effect)
