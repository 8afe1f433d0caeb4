"""The site roll-up: devices online per kind, active alarms, the next paper's readiness, a colour.

red: an active critical alarm, or the next paper's readiness is no-go;
amber: any other active alarm, or a device offline;
green: nothing of the above.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from api.devstate import OFFLINE, DeviceState
from api.models.common import ns_time
from api.models.sites import (
    AlarmCount,
    DevicePublic,
    KindCount,
    NextPaper,
    ReadinessBrief,
    RoomPublic,
    SitePublic,
)
from examwatch.inventory import Inventory, Site
from examwatch.store import Alarm, Readiness
from examwatch.timetable import Timetable

_A = cast(sa.Table, Alarm.__table__)
_R = cast(sa.Table, Readiness.__table__)
SITE_ROOM = "_site"


def device_public(inv: Inventory, states: dict[str, DeviceState], device_id: str) -> DevicePublic:
    ref = inv.devices[device_id]
    st = states.get(device_id, OFFLINE)
    message = None if st.status_online is None else ("online" if st.status_online else "offline")
    return DevicePublic(id=ref.id, kind=ref.kind, site=ref.site, room=ref.room, online=st.online,
                        last_seen=ns_time(st.last_seen_ns), clock_skew_ms=st.skew_ms, status_message=message)


def alarm_counts(conn: sa.Connection, site: str | None = None) -> dict[str, AlarmCount]:
    """Active alarms per site, by severity, with how many are drills."""
    q = (sa.select(_A.c.site, _A.c.severity, _A.c.drill, sa.func.count())
         .where(_A.c.active).group_by(_A.c.site, _A.c.severity, _A.c.drill))
    if site is not None:
        q = q.where(_A.c.site == site)
    out: dict[str, AlarmCount] = {}
    for row_site, severity, drill, n in conn.execute(q):
        c = out.setdefault(row_site, AlarmCount())
        if severity in ("critical", "major", "minor", "warning"):
            setattr(c, severity, getattr(c, severity) + n)
        c.total += n
        c.drill += n if drill else 0
    return out


def readiness_of(conn: sa.Connection, papers: set[str]) -> dict[tuple[str, str], Any]:
    """The site-level readiness rows of ``papers``, by (paper, site)."""
    if not papers:
        return {}
    rows = conn.execute(sa.select(_R).where(_R.c.paper.in_(papers), _R.c.room == SITE_ROOM))
    return {(r.paper, r.site): r for r in rows}


class Rollup:
    """Builds SitePublic and RoomPublic from one consistent read of the world."""

    def __init__(self, inv: Inventory, timetable: Timetable, states: dict[str, DeviceState],
                 conn: sa.Connection, now: datetime, site: str | None = None) -> None:
        self.inv = inv
        self.states = states
        self.now = now
        self.alarms = alarm_counts(conn, site)
        self.next = {s.id: timetable.next(s.id, now) for s in inv.sites if site is None or s.id == site}
        self.ready = readiness_of(conn, {p.id for p in self.next.values() if p is not None})

    def _online(self, device_id: str) -> bool:
        return self.states.get(device_id, OFFLINE).online

    def site(self, site: Site) -> SitePublic:
        devices: dict[str, KindCount] = {}
        for d in site.devices:
            c = devices.setdefault(d.kind.value, KindCount(online=0, offline=0))
            if self._online(d.id):
                c.online += 1
            else:
                c.offline += 1
        alarms = self.alarms.get(site.id, AlarmCount())
        paper = self.next[site.id]
        next_paper = None
        reasons: list[str] = []
        if paper is not None:
            row = self.ready.get((paper.id, site.id))
            brief = ReadinessBrief(go=None if row is None else bool(row.go), detail="" if row is None else row.detail,
                                   at=None if row is None else ns_time(row.at_ns))
            next_paper = NextPaper(id=paper.id, subject=paper.subject, start=paper.start, end=paper.end,
                                   in_session=paper.in_session(self.now), readiness=brief)
            if brief.go is False:
                reasons.append(f"no-go for {paper.id}")
        if alarms.critical:
            reasons.append(f"{alarms.critical} critical alarms")
        red = bool(reasons)
        if alarms.total - alarms.critical:
            reasons.append(f"{alarms.total - alarms.critical} other active alarms")
        offline = sum(c.offline for c in devices.values())
        if offline:
            reasons.append(f"{offline} devices offline")
        status = "red" if red else "amber" if reasons else "green"
        return SitePublic(id=site.id, name=site.name, type=site.type.value, status=status, reasons=reasons,
                          devices=devices, alarms=alarms, next_paper=next_paper)

    def rooms(self, site: Site) -> list[RoomPublic]:
        online: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for d in site.devices:
            total[d.room] += 1
            online[d.room] += self._online(d.id)
        return [RoomPublic(id=r.id, site=site.id, name=r.name, type=r.type.value, devices_online=online[r.id],
                           devices_offline=total[r.id] - online[r.id]) for r in site.rooms]
