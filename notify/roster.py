"""Routing by the duty roster (``examwatch.roster``): who, at which level, is told of an alarm.

A recipient is a phone or a group-chat robot. A robot's address in the outbox is
``robot:<person id>:<n>``, never its URL: the URL carries the robot's secret token, and the
outbox is shown by the API; the sender looks the URL up in the roster when it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time as dtime

from examwatch.roster import Roster

ROBOT = "robot:"


@dataclass(frozen=True, slots=True)
class Recipient:
    person: str
    name: str
    address: str  # a phone number, or robot:<person id>:<n>

    @property
    def robot(self) -> bool:
        return self.address.startswith(ROBOT)


def is_robot(address: str) -> bool:
    """Whether an outbox address is a group-chat robot's."""
    return address.startswith(ROBOT)


def robot_url(roster: Roster, address: str) -> str | None:
    """The Apprise URL of ``robot:<person id>:<n>`` in ``roster`` (None: no longer there)."""
    _, pid, n = [*address.split(":", 2), "", ""][:3]
    person = roster.by_id.get(pid)
    if person is None or not n.isdigit() or int(n) >= len(person.robots):
        return None
    return person.robots[int(n)]


def levels(roster: Roster, site: str, kind: str, severity: str, drill: bool) -> list[int]:
    """The roster levels that have a route for this alarm, lowest first."""
    return sorted({r.level for r in roster.routes if r.matches(site, kind, severity, drill)})


def recipients(roster: Roster, level: int, site: str, kind: str, severity: str, drill: bool,
               local: dtime) -> list[Recipient]:
    """Everyone on duty at ``local`` on the routes of ``level`` for this alarm: each phone and robot once."""
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
                for n, _url in enumerate(person.robots):
                    address = f"{ROBOT}{person.id}:{n}"
                    out.setdefault(address, Recipient(person.id, person.name, address))
    return list(out.values())
