"""Routing by the duty roster (``examwatch.roster``): who, at which level, is told of an alarm."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time as dtime

from examwatch.roster import Roster


@dataclass(frozen=True, slots=True)
class Recipient:
    person: str
    name: str
    phone: str


def levels(roster: Roster, site: str, kind: str, severity: str, drill: bool) -> list[int]:
    """The roster levels that have a route for this alarm, lowest first."""
    return sorted({r.level for r in roster.routes if r.matches(site, kind, severity, drill)})


def recipients(roster: Roster, level: int, site: str, kind: str, severity: str, drill: bool,
               local: dtime) -> list[Recipient]:
    """Everyone on duty at ``local`` on the routes of ``level`` for this alarm, each phone once."""
    people = roster.by_id
    out: dict[str, Recipient] = {}
    for r in roster.routes:
        if r.level != level or not r.matches(site, kind, severity, drill):
            continue
        for pid in r.people:
            person = people[pid]
            if person.on_duty(local):
                for phone in person.phones:
                    out.setdefault(phone, Recipient(person.id, person.name, phone))
    return list(out.values())
