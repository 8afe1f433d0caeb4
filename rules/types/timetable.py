"""timetable: what the timetable requires of a room's devices while a paper is on.

``require: jammer_shielding`` (jammer.yaml): from 15 minutes before each paper to its end,
outside its ``jammer_off`` windows (English listening), every jammer is on and every band it
covers (the inventory's ``bands``) is at or above ``floor_dbm``. A jammer that reports only
channel bits (no ``rf_dbm``) is judged on them: weaker evidence, but evidence.
``require: camera_recording`` (camera.yaml): during each paper every exam room has at least
one reporting camera that is recording with a picture.

```yaml
- {name: jammer_shielding, type: timetable, require: jammer_shielding, severity: critical, floor_dbm: 20}
- {name: room_recording, type: timetable, require: camera_recording, severity: major}
```
"""

from __future__ import annotations

from typing import Any

from examwatch.alarm import Severity, Subject
from examwatch.bands import Band
from examwatch.kinds import Envelope
from examwatch.rulebook.configs import TimetableConfig
from rules.model import Finding, Observation, Verdict
from rules.types._base import DRILL_SUFFIX, Contract, Rule, RuleType, keyed, observe, state_key
from rules.world import World


def jammer_problems(msg: Envelope, bands: tuple[Band, ...], floor_dbm: float) -> list[str]:
    """What is wrong with a jammer's shielding in this report, whatever the time."""
    if not getattr(msg, "on", False):
        return ["switched off"]
    rf: dict[Band, float] | None = getattr(msg, "rf_dbm", None)
    bits: dict[Band, bool] | None = getattr(msg, "channels_on", None)
    out = []
    for band in bands:
        if rf is not None:
            level = rf.get(band)
            if level is None:
                out.append(f"{band.value} not reported")
            elif level < floor_dbm:
                out.append(f"{band.value} {level:g} dBm < {floor_dbm:g}")
        elif bits is not None:
            if not bits.get(band, False):
                out.append(f"{band.value} channel off")
        else:
            out.append(f"{band.value} not reported")
    return out


def evaluate(
    severity: Severity, active: bool, paper: str | None, problems: list[str], what: str
) -> tuple[bool, Finding | None]:
    """Active when a paper requires it now and something is wrong; cleared otherwise."""
    bad = paper is not None and bool(problems)
    if bad and not active:
        return True, Finding(True, severity, f"{what} during {paper}: {', '.join(problems)}")
    if active and not bad:
        why = "fixed" if paper is not None else "no paper requires it now"
        return False, Finding(False, severity, f"{what}: {why}")
    return active, None


class TimetableRule(Rule[TimetableConfig]):
    """State per jammer: [active, problems]; per camera: [picture ok]; per room: active."""

    def __init__(self, cfg: TimetableConfig, kind: str, world: World) -> None:
        super().__init__(cfg, kind, world)
        self.required: dict[str, str | None] = {}

    def on_message(self, obs: Observation) -> list[Verdict]:
        if obs.ref.kind != self.kind or obs.msg is None or obs.channel != "telemetry":
            return []
        if self.cfg.require == "camera_recording":
            m = obs.msg
            ok = bool(
                getattr(m, "recording", False)
                and not getattr(m, "video_loss", True)
                and not getattr(m, "tamper", True)
            )
            if self.state.get(state_key(obs)) != [ok]:
                self.put(state_key(obs), [ok])
            return self._room(obs.ref.site, obs.ref.room, obs.recv_s, obs.drill)
        problems = jammer_problems(obs.msg, self.world.specs[obs.ref.id].bands, self.cfg.floor_dbm)
        return self._jammer(obs.ref.id, problems, obs.recv_s, obs.drill)

    def _jammer(self, dev: str, problems: list[str], now: float, drill: bool) -> list[Verdict]:
        ref = self.world.devices[dev]
        key = keyed(dev, drill)
        paper = self.world.jammers_required(ref.site, now)
        active = bool(self.state.get(key, [False])[0])
        new, finding = evaluate(self.cfg.severity, active, paper.id if paper else None, problems, dev)
        if [new, problems] != self.state.get(key):
            self.put(key, [new, problems])
        return [] if finding is None else [finding.on(Subject.device(ref), drill)]

    def _room(self, site: str, room: str, now: float, drill: bool = False) -> list[Verdict]:
        key = keyed(f"{site}-{room}", drill)
        if (site, room) not in self.world.exam_rooms_set:
            return []
        paper = self.world.in_session(site, now)
        cams = [keyed(d.id, drill) for d in self.world.by_room.get((site, room), ()) if d.kind == "camera"]
        if not any(c in self.state for c in cams) and not self.state.get(key):
            return []  # no camera has said anything yet: coverage speaks for silence
        recording = [c for c in cams if self.state.get(c, [False])[0]
                     and self.world.reporting(c.removesuffix(DRILL_SUFFIX), now)]
        problems = [] if recording else [f"none of {len(cams)} cameras recording"]
        active = bool(self.state.get(key))
        paper_id = paper.id if paper else None
        new, finding = evaluate(self.cfg.severity, active, paper_id, problems, f"room {site}-{room}")
        if new != active:
            self.put(key, True if new else None)
        return [] if finding is None else [finding.on(Subject.room(site, room), drill)]

    def on_tick(self, now: float) -> list[Verdict]:
        out: list[Verdict] = []
        if self.cfg.require == "camera_recording":
            for site, room in self.world.exam_rooms:
                out += self._room(site, room, now)
                if self.state.get(keyed(f"{site}-{room}", True)):
                    out += self._room(site, room, now, drill=True)
            return out
        for site, refs in self.world.by_site.items():
            paper = self.world.jammers_required(site, now)
            required = paper.id if paper else None
            if self.required.get(site, "") == required:
                continue
            self.required[site] = required
            for ref in refs:
                for drill in (False, True):
                    st = self.state.get(keyed(ref.id, drill))
                    if ref.kind == "jammer" and st is not None:
                        out += self._jammer(ref.id, list(st[1]), now, drill)
        return out


def _jammer_step(rf: float) -> Any:
    def step(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
        bands = world.specs["S01-R01-JAM1"].bands
        return rule.on_message(observe(world, "S01-R01-JAM1", now, on=True, rf_dbm=dict.fromkeys(bands, rf)))

    return step


TYPE = RuleType(
    "timetable",
    TimetableConfig,
    TimetableRule,
    Contract(
        "jammer",
        {"name": "shielding", "type": "timetable", "require": "jammer_shielding"},
        _jammer_step(5.0),
        _jammer_step(27.0),
    ),
)
