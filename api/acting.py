"""A person acts on an alarm: acknowledge, comment or resolve, on the service clock, published at once.

Every way a person acts (the endpoints, an SMS reply, the mobile page) comes through here, so
each is stamped by the same clock (``settings.clock``: the wall, or a drill's) and each
transition reaches the notifier without waiting for the rules engine's outbox.
"""

from __future__ import annotations

from typing import Literal

from api.world import World
from examwatch.clock import now_ns
from examwatch.store import lifecycle
from examwatch.store.lifecycle import AlarmView

Act = Literal["acknowledge", "comment", "resolve"]


def act(world: World, alarm_id: int, what: Act, by: str, comment: str = "") -> AlarmView:
    """Move the alarm as ``by``; raises ``lifecycle.AlarmError`` when the move is not allowed."""
    at = now_ns(world.clock)
    if what == "acknowledge":
        view = lifecycle.acknowledge(world.store, alarm_id, by, comment, at_ns=at)
    elif what == "resolve":
        view = lifecycle.resolve(world.store, alarm_id, by, comment, at_ns=at)
    else:
        view = lifecycle.comment(world.store, alarm_id, by, comment, at_ns=at)
    assert world.publisher is not None
    world.publisher.transition(lifecycle.message(view, by.strip(), comment))
    return view
