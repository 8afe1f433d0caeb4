"""What every rule type has: a pydantic config, a runner that keeps per-subject state, a contract case.

A rule type's config (``<Name>Config``) is in the domain package (``examwatch.rulebook.configs``),
so the API validates rules files with it too. The type's module here holds its pure evaluation
function(s) (state and input in, new state and verdict out, nothing mutated), and a thin ``Rule`` runner
that keeps the state per subject and feeds the pure function. The runner's state is JSON-able
so the engine can persist it in the store and restore it after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from examwatch.kinds import KINDS, Channel
from examwatch.rulebook.configs import RuleConfig
from rules.model import Observation, Refusal, Verdict
from rules.world import World

#: Drill data is judged apart from real data of the same device: a drill that injects a power cut
#: must not be cleared by the real sensor's next healthy report, nor hide a real failure.
DRILL_SUFFIX = "~drill"


class Timers(Protocol):
    def schedule(self, at_s: float, rule: str, subject: str) -> None:
        """Call the rule's ``on_timer(subject, now)`` at ``at_s`` (or soon after)."""


class _NoTimers:
    def schedule(self, at_s: float, rule: str, subject: str) -> None:
        pass


#: Timers that never fire: for a runner before the engine starts it, and for contract tests.
NO_TIMERS: Timers = _NoTimers()


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    paper: str
    site: str
    room: str  # a room id, or "_site"
    go: bool
    detail: str
    drill: bool = False


C = TypeVar("C", bound=RuleConfig)


class Rule(Generic[C]):
    """A configured rule with its per-subject state; subclasses override the hooks they need."""

    #: lower runs first for each message (site silence before device absence)
    PRIORITY: ClassVar[int] = 10
    #: whose messages ``on_message`` needs: its own kind's, every kind's, or none (tick only)
    SEES: ClassVar[str] = "own"
    #: whether ``on_refusal`` wants the messages the intake refused (no other rule sees them)
    SEES_REFUSALS: ClassVar[bool] = False

    def __init__(self, cfg: C, kind: str, world: World) -> None:
        self.cfg = cfg
        self.kind = kind
        self.world = world
        self.state: dict[str, Any] = {}
        self.dirty: set[str] = set()
        self.reports: list[ReadinessReport] = []

    @property
    def name(self) -> str:
        return self.cfg.name

    def put(self, subject: str, value: Any) -> None:
        """Set a subject's state (None forgets it) and mark it for persisting."""
        if value is None:
            self.state.pop(subject, None)
        else:
            self.state[subject] = value
        self.dirty.add(subject)

    def start(self, now: float, timers: Timers, grace_s: float) -> None:
        """Called once the state is restored: schedule timers."""

    def on_message(self, obs: Observation) -> list[Verdict]:
        return []

    def on_refusal(self, refusal: Refusal) -> list[Verdict]:
        return []

    def on_timer(self, subject: str, now: float, timers: Timers) -> list[Verdict]:
        return []

    def on_tick(self, now: float) -> list[Verdict]:
        return []


@dataclass(frozen=True)
class Contract:
    """One scenario every rule type passes: ``fire`` makes it raise, ``clear`` makes it clear.

    Each is called with the runner, its world and a time, and returns the verdicts produced.
    """

    kind: str
    config: dict[str, Any]
    fire: Callable[[Rule[Any], World, float], list[Verdict]]
    clear: Callable[[Rule[Any], World, float], list[Verdict]]


@dataclass(frozen=True)
class RuleType:
    name: str
    config: type[RuleConfig]
    runner: type[Rule[Any]]
    contract: Contract


def keyed(subject: str, drill: bool) -> str:
    """The state key of ``subject`` for real data, or for drill data."""
    return subject + DRILL_SUFFIX if drill else subject


def state_key(obs: Observation) -> str:
    return keyed(obs.ref.id, obs.drill)


def field_of(model: BaseModel, path: str) -> Any:
    """``rf_dbm.n78`` → ``model.rf_dbm["n78"]``; None when absent."""
    head, _, key = path.partition(".")
    value = getattr(model, head, None)
    if key and isinstance(value, dict):
        return value.get(key)
    return None if key else value


def observe(
    world: World,
    device: str,
    now: float,
    *,
    online: bool | None = None,
    drill: bool = False,
    ts_s: float | None = None,
    **fields: Any,
) -> Observation:
    """An observation of ``device`` (telemetry with ``fields``, or a status when ``online`` is
    given), built without validation: for contract tests and benchmarks of the rules alone."""
    ref = world.devices[device]
    if online is not None:
        return Observation(ref, Channel.STATUS, None, online, now, drill)
    msg = KINDS[ref.kind].telemetry.model_construct(
        ts=int((now if ts_s is None else ts_s) * 1000), device=device, drill=drill, **fields
    )
    return Observation(ref, Channel.TELEMETRY, msg, None, now, drill)
