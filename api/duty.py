"""Who may handle which alarm from the phone: the roster's routes and the level the notifier reached.

A number may act on an alarm when one of its roster people is on a route that matches the alarm
(site, kind, severity, drill) at a level the notifier has already told (``notify_alarm.level``):
the people who were, or would have been, texted about it. Everyone else is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa

from examwatch.inventory import Inventory
from examwatch.roster import Person, Roster
from examwatch.store.lifecycle import AlarmError, AlarmView, get
from examwatch.store.notify_models import NotifyAlarm

_NA = cast(sa.Table, NotifyAlarm.__table__)


def normalise_phone(number: str) -> str:
    """Digits only, without the country code of a Chinese mobile number (+86, 0086, 86)."""
    digits = re.sub(r"\D", "", number)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11 and digits[len(prefix)] == "1":
            return digits[len(prefix):]
    return digits


def people_of(roster: Roster, number: str) -> list[Person]:
    """The roster's people with ``number`` among their phones (a shared phone has several)."""
    wanted = normalise_phone(number)
    if not wanted:
        return []
    return [p for p in roster.people if any(normalise_phone(ph) == wanted for ph in p.phones)]


def subject_kind(inventory: Inventory, alarm: AlarmView) -> str:
    """What a route's ``kinds`` match for this alarm: the device's kind, or ``room`` / ``site``."""
    if alarm.subject_type == "device":
        ref = inventory.devices.get(alarm.subject)
        return ref.kind if ref is not None else "device"
    return alarm.subject_type


@dataclass(frozen=True, slots=True)
class Held:
    """An alarm the notifier holds open: its short code and the highest roster level told, with
    the alarm as the store has it now."""

    alarm: AlarmView
    code: str
    level: int


def authorised(roster: Roster, inventory: Inventory, person_ids: list[str], held: Held) -> str | None:
    """The first of ``person_ids`` allowed to act on ``held``, or None."""
    a = held.alarm
    kind = subject_kind(inventory, a)
    for route in roster.routes:
        if route.level > held.level or not route.matches(a.site, kind, a.severity, a.drill):
            continue
        for pid in person_ids:
            if pid in route.people:
                return pid
    return None


def open_alarms(notify_store: sa.Engine, store: sa.Engine) -> list[Held]:
    """Every alarm the notifier holds open (not resolved in its view), as the store has it now,
    oldest first; alarms the store has resolved in the meantime are included (state resolved)."""
    with notify_store.connect() as conn:
        rows = conn.execute(sa.select(_NA.c.alarm_id, _NA.c.code, _NA.c.level)
                            .where(_NA.c.state != "resolved").order_by(_NA.c.alarm_id)).all()
    if not rows:
        return []
    out = []
    with store.connect() as conn:
        for r in rows:
            try:
                alarm = get(conn, r.alarm_id)
            except AlarmError:  # the notifier knows an alarm this store lacks (another store's)
                continue
            out.append(Held(alarm, (r.code or "").upper(), r.level))
    return out


__all__ = ["Held", "authorised", "normalise_phone", "open_alarms", "people_of", "subject_kind"]
