"""Each scenario fault as engine effects: what the faulty devices send instead of the truth."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from drills import scenario as sc
from drills.plan import FaultPlan
from examwatch.bands import EXAM_ROOM_BANDS
from examwatch.inventory import DetectorForm, Device
from examwatch.kinds import Kind
from simulators.behaviour import DeviceSim
from simulators.effects import Effect
from simulators.engine import Engine
from simulators.readings import RF_OFF_DBM, Payload, poisson

BATTERY_FALL_S = 120.0  # a flat battery empties within two simulated minutes


@dataclass(eq=False)
class MainsLost(Effect):
    drain_pct_per_min: float = 100 / 150
    battery_pct: float = 100.0

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        pct = max(0.0, self.battery_pct - (t - self.start) / 60 * self.drain_pct_per_min)
        return {**payload, "mains_v": 0.0, "frequency_hz": 0.0, "on_ups": True,
                "ups_battery_pct": round(pct, 1), "ups_minutes_left": round(pct / self.drain_pct_per_min, 1)}

    def events(self, payload: Payload, begins: bool) -> list[Payload]:
        return [_event(payload, event="mains", lost=begins)]


@dataclass(eq=False)
class JammerOff(Effect):
    """The jammer's output off: no band above the measurement floor, ``on`` false."""

    #: it was on when the fault began (switched off by hand), rather than never switched on
    announce_off: bool = True

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        return {**payload, "on": False, "rf_dbm": dict.fromkeys(payload["rf_dbm"], RF_OFF_DBM)}

    def events(self, payload: Payload, begins: bool) -> list[Payload]:
        if begins and not self.announce_off:
            return []
        return [_event(payload, event="switched", on=not begins, by="manual")]

    def filter_events(self, events: list[Payload]) -> list[Payload]:
        return [e for e in events if e.get("event") != "switched"]


@dataclass(eq=False)
class BandDown(Effect):
    band: str = "n78"
    dbm: float = 0.0

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        return {**payload, "rf_dbm": {**payload["rf_dbm"], self.band: self.dbm}}


@dataclass(eq=False)
class CameraAlert(Effect):
    """A camera alert (tamper, video loss, recording stopped): the field, and the alert event at both edges."""

    alert: str = "tamper"

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        if self.alert == "tamper":
            return {**payload, "tamper": True}
        if self.alert == "video_loss":
            return {**payload, "video_loss": True, "fps": 0.0, "bitrate_kbps": 0.0}
        return {**payload, "recording": False}

    def events(self, payload: Payload, begins: bool) -> list[Payload]:
        return [_event(payload, event="alert", alert=self.alert, active=begins)]


@dataclass(eq=False)
class FaceMatchSurge(Effect):
    """Passes at ``passes_per_min``, of which ``share`` fail the face match (binomial draws)."""

    share: float = 0.3
    passes_per_min: float = 12.0
    rng: random.Random = field(default_factory=random.Random)

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        passes = poisson(self.rng, self.passes_per_min * payload["interval_s"] / 60)
        failures = sum(self.rng.random() < self.share for _ in range(passes))
        return {**payload, "passes": passes, "face_match_failures": failures,
                "queue_length": min(5000, passes * 30 // max(payload["interval_s"], 1))}

    def filter_events(self, events: list[Payload]) -> list[Payload]:
        # the gate's usual rejects are replaced by this fault's failures (not counted as events here)
        return [e for e in events if e.get("reason") != "face_mismatch" and e.get("event") != "doubtful"]


@dataclass(eq=False)
class BatteryFlat(Effect):
    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        left = max(0.0, 1 - (t - self.start) / BATTERY_FALL_S)
        return {**payload, "battery_pct": round(payload["battery_pct"] * left, 1)}


@dataclass(eq=False)
class ClockSkew(Effect):
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


def effect(fp: FaultPlan, speed: float) -> Effect:  # noqa: PLR0911 - one effect per fault type
    """The effect a device fault has on its device's reports over ``[start, end)``."""
    start, end, fault = fp.start, fp.end, fp.fault
    match fault:
        case sc.MainsLost():
            return MainsLost(start, end, drain_pct_per_min=fault.drain_pct_per_min, battery_pct=fault.battery_pct)
        case sc.JammerOff():
            return JammerOff(start, end)
        case sc.JammerNotOn():
            return JammerOff(start, end, announce_off=False)
        case sc.BandDown():
            return BandDown(start, end, band=fault.band.value, dbm=fault.dbm)
        case sc.Tamper() | sc.VideoLoss() | sc.RecordingStopped():
            alert = {"tamper": "tamper", "video_loss": "video_loss", "recording_stopped": "recording_stopped"}
            return CameraAlert(start, end, alert=alert[fault.type])
        case sc.FaceMatchSurge():
            return FaceMatchSurge(start, end, share=fault.share, passes_per_min=fault.passes_per_min,
                                  rng=random.Random(int(start)))
        case sc.Offline():
            return Effect(start, end, silence=True, announce=True)
        case sc.BatteryFlat():
            return BatteryFlat(start, end)
        case sc.ClockSkew():
            # The rules judge skew in wall terms on a compressed clock: scale the error with it. A
            # scaled error of whole seconds can be a whole number of report intervals, which would
            # stamp a skewed report on the time of a later good one (InfluxDB keeps one point per
            # series and time): one millisecond more keeps them apart.
            return ClockSkew(start, end, offset_ms=int(fault.offset.total_seconds() * speed * 1000) + 1)
        case sc.Malformed():
            return Malformed(start, end, style=fault.style)
    raise TypeError(f"{fault.kind_name} is not a device fault")


def install(fp: FaultPlan, engine: Engine, speed: float) -> None:
    """Attach the fault's effects to the engine's devices for its window on the drill clock."""
    fault = fp.fault
    if isinstance(fault, sc.NetworkCut):
        run = next(r for r in engine.sites if r.site.id == fault.site)
        for dev in run.devices:
            dev.effects.append(Effect(fp.start, fp.end, silence=True))
        return
    if isinstance(fault, sc.RogueDevice):
        engine.add_rogue(_rogue(fault, engine), fp.start, fp.end)
        return
    engine.devices[fp.subject].effects.append(effect(fp, speed))
