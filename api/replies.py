"""What an SMS reply does: acknowledge, comment or escalate an alarm, for the person whose phone sent it.

The sender's number must be a roster person's, on a route that matches the alarm at a level the
notifier has told (``api.duty``). A number outside the roster gets no answer at all, so nothing
about any alarm leaks; a roster person is told, in one line, what was done or why not. The codes
an alert SMS carries (``notify_alarm.code``) pick the alarm; without one, the person's only
unacknowledged alarm is meant, and with several the answer lists their codes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from api import sms_text as say
from api.acting import act
from api.duty import Held, authorised, open_alarms, people_of
from api.sms_text import NotUnderstood
from api.world import World
from examwatch import roster as roster_mod
from examwatch.alarm import State
from examwatch.roster import Roster
from examwatch.store import lifecycle
from examwatch.store.lifecycle import AlarmError

log = logging.getLogger("examwatch.api.sms")
_UNACKNOWLEDGED = (State.FIRING.value, State.PENDING.value)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a reply: ``outcome`` for the audit (``sms_reply.outcome``) and the SMS answered."""

    outcome: str
    answer: str
    person: str | None = None
    alarm_id: int | None = None


_cache: dict[Path, tuple[int, Roster]] = {}


def current_roster(world: World) -> Roster:
    """The roster file, read again only when it changed (every reply needs it)."""
    path = world.settings.notify.roster
    mtime = path.stat().st_mtime_ns
    hit = _cache.get(path)
    if hit is None or hit[0] != mtime:
        hit = (mtime, roster_mod.load(path))
        _cache[path] = hit
    return hit[1]


def handle(world: World, sender: str, text: str | None) -> Outcome:  # noqa: PLR0911 - one answer per refusal
    """Carry out the reply ``text`` (None: it could not be decoded) from ``sender``."""
    roster = current_roster(world)
    people = people_of(roster, sender)
    if not people:
        return Outcome("refused", "")
    pids = [p.id for p in people]
    if text is None:
        return Outcome("bad_encoding", say.BAD_ENCODING, pids[0])
    parsed = say.parse(text)
    if isinstance(parsed, NotUnderstood):
        return Outcome(parsed.reason, say.TOO_LONG if parsed.reason == "too_long" else say.HELP, pids[0])
    if parsed.action == "comment" and not parsed.whole:
        return Outcome("empty_comment", say.EMPTY_COMMENT, pids[0])
    held = open_alarms(world.notify, world.store)
    mine = [(h, pid) for h in held if (pid := authorised(roster, world.inventory, pids, h)) is not None]
    code, words = parsed.code, parsed.whole
    target: tuple[Held, str] | None = None
    if code is not None and any(h.code == code for h in held):
        target = next(((h, pid) for h, pid in mine if h.code == code), None)
        if target is None:  # someone else's alarm: answered as if the code did not exist
            return Outcome("refused", say.unknown_code(code), pids[0])
        words = parsed.rest
    elif code is not None and parsed.action != "comment":
        return Outcome("unknown_code", say.unknown_code(code), pids[0])
    if target is None:
        candidates = [(h, pid) for h, pid in mine if h.alarm.state in _UNACKNOWLEDGED]
        if parsed.action == "comment" and not candidates:
            candidates = [(h, pid) for h, pid in mine if h.alarm.state == State.ACKNOWLEDGED]
        if not candidates:
            return Outcome("none", say.NO_OPEN, pids[0])
        if len(candidates) > 1:
            return Outcome("ambiguous", say.ambiguous([_code(h) for h, _ in candidates], parsed.action), pids[0])
        target = candidates[0]
    return _carry_out(world, roster, parsed.action, target, words)


def _code(h: Held) -> str:
    return h.code or f"#{h.alarm.id}"


def _what(roster: Roster, h: Held) -> str:
    label = roster.labels.get(h.alarm.rule)
    return f"{h.alarm.site} {label.zh if label else h.alarm.rule}"


def _carry_out(world: World, roster: Roster, action: str, target: tuple[Held, str],  # noqa: PLR0911 - as above
               words: str) -> Outcome:
    h, pid = target
    alarm_id, code = h.alarm.id, _code(h)

    def out(outcome: str, answer: str) -> Outcome:
        return Outcome(outcome, answer, pid, alarm_id)

    if action == "comment" and not words:
        return out("empty_comment", say.EMPTY_COMMENT)
    if h.alarm.state == State.RESOLVED:
        return out("closed", say.closed(code))
    if action == "escalate":
        ok = world.publisher is not None and world.publisher.escalate(alarm_id, pid)
        return out("escalate", say.escalated(code)) if ok else out("escalate_failed", say.escalate_failed(code))
    try:
        if h.alarm.state == State.ACKNOWLEDGED:
            if action == "ack":
                return out("already", say.already(code, _acknowledger(world, roster, alarm_id)))
            act(world, alarm_id, "comment", pid, words)
            return out("comment", say.commented(code))
        act(world, alarm_id, "acknowledge", pid, words)
    except AlarmError:  # it moved since it was read: say how it stands now
        state = _state(world, alarm_id)
        if state == State.ACKNOWLEDGED:
            return out("already", say.already(code, _acknowledger(world, roster, alarm_id)))
        if state == State.RESOLVED:
            return out("closed", say.closed(code))
        log.exception("alarm %d: reply from %s not carried out", alarm_id, pid)
        return out("failed", say.failed(code))
    what = _what(roster, h)
    if action == "comment":
        return out("ack_comment", say.acknowledged_with_comment(code, what))
    return out("ack", say.acknowledged(code, what))


def _state(world: World, alarm_id: int) -> str | None:
    with world.store.connect() as conn:
        try:
            return lifecycle.get(conn, alarm_id).state
        except AlarmError:
            return None


def _acknowledger(world: World, roster: Roster, alarm_id: int) -> str:
    """Who acknowledged the alarm, by name where the roster knows them."""
    names = {p.id: p.name for p in roster.people}
    acks = [t for t in lifecycle.history(world.store, alarm_id) if t.state == State.ACKNOWLEDGED]
    by = acks[0].by if acks else "他人"
    return names.get(by, by)
