"""Silences and maintenance windows: mute notifications by site, room, device or rule until an end time.

A silence names one or more matchers; it mutes an alarm when every matcher it names equals the
alarm's (a room silence needs the site too, since room ids repeat across sites). It mutes the
messages only: the alarm, its transitions and the muted notifications are all kept, each muted
row naming the silence. ``expire`` ends a silence early and keeps who did it. The notifier and
the API both call these functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, cast

import sqlalchemy as sa

from examwatch.store.db import writing
from examwatch.store.notify_models import Silence

_S = cast(sa.Table, Silence.__table__)
Kind = Literal["silence", "maintenance"]


class SilenceError(Exception):
    """A silence that cannot be made or changed: no matcher, an end in the past, an unknown id."""


@dataclass(frozen=True, slots=True)
class SilenceView:
    id: int
    kind: str
    site: str | None
    room: str | None
    device: str | None
    rule: str | None
    starts_ns: int
    ends_ns: int
    by: str
    comment: str
    created_ns: int
    expired_by: str | None

    def describe(self) -> str:
        """``site=S01 room=VAULT`` and so on: the matchers this silence names."""
        parts = {"site": self.site, "room": self.room, "device": self.device, "rule": self.rule}
        return " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)


def _view(row: sa.Row[tuple[object, ...]]) -> SilenceView:
    m = row._mapping
    return SilenceView(m["id"], m["kind"], m["site"], m["room"], m["device"], m["rule"], m["starts_ns"], m["ends_ns"],
                       m["by"], m["comment"], m["created_ns"], m["expired_by"])


def create(engine: sa.Engine, *, ends_ns: int, by: str, site: str | None = None, room: str | None = None,
           device: str | None = None, rule: str | None = None, starts_ns: int | None = None, kind: Kind = "silence",
           comment: str = "", now_ns: int | None = None) -> SilenceView:
    """Make a silence (or a maintenance window, ``kind``) from ``starts_ns`` (default now) to ``ends_ns``."""
    now = now_ns if now_ns is not None else time.time_ns()
    start = starts_ns if starts_ns is not None else now
    if not by.strip():
        raise SilenceError("say who you are (by)")
    if site is None and room is None and device is None and rule is None:
        raise SilenceError("name at least one of site, room, device or rule")
    if room is not None and site is None:
        raise SilenceError("a room silence needs its site (room ids repeat across sites)")
    if ends_ns <= max(start, now):
        raise SilenceError("the end time must be after the start and in the future")
    values = {"kind": kind, "site": site, "room": room, "device": device, "rule": rule, "starts_ns": start,
              "ends_ns": ends_ns, "by": by.strip(), "comment": comment, "created_ns": now, "expired_by": None}
    with writing(engine) as conn:
        sid = conn.execute(sa.insert(_S).values(**values).returning(_S.c.id)).scalar_one()
        return _view(conn.execute(sa.select(_S).where(_S.c.id == sid)).one())


def list_silences(engine: sa.Engine, *, active_only: bool = True, now_ns: int | None = None) -> list[SilenceView]:
    """Silences, newest first; only those in force (or yet to start) unless ``active_only`` is False."""
    q = sa.select(_S).order_by(_S.c.id.desc())
    if active_only:
        q = q.where(_S.c.ends_ns > (now_ns if now_ns is not None else time.time_ns()))
    with engine.connect() as conn:
        return [_view(r) for r in conn.execute(q)]


def expire(engine: sa.Engine, silence_id: int, by: str, now_ns: int | None = None) -> SilenceView:
    """End a silence now; kept with who ended it."""
    now = now_ns if now_ns is not None else time.time_ns()
    if not by.strip():
        raise SilenceError("say who you are (by)")
    with writing(engine) as conn:
        row = conn.execute(sa.select(_S).where(_S.c.id == silence_id)).first()
        if row is None:
            raise SilenceError(f"no silence {silence_id}")
        if row.ends_ns <= now:
            raise SilenceError(f"silence {silence_id} has already ended")
        conn.execute(sa.update(_S).where(_S.c.id == silence_id).values(ends_ns=now, expired_by=by.strip()))
        return _view(conn.execute(sa.select(_S).where(_S.c.id == silence_id)).one())


def matching(conn: sa.Connection, *, site: str, room: str | None, device: str | None, rule: str,
             at_ns: int) -> SilenceView | None:
    """The silence in force at ``at_ns`` that mutes an alarm of ``rule`` on this place, if any."""
    row = conn.execute(_MATCHING, {"site": site, "room": room, "device": device, "rule": rule, "at": at_ns}).first()
    return _view(row) if row is not None else None


# Built once: the notifier asks for every message. A matcher the alarm lacks (room or device
# None) compares with NULL, which is never true, so only silences without that matcher match.
_MATCHING = sa.select(_S).where(
    _S.c.starts_ns <= sa.bindparam("at"), _S.c.ends_ns > sa.bindparam("at"),
    sa.or_(_S.c.site.is_(None), _S.c.site == sa.bindparam("site")),
    sa.or_(_S.c.room.is_(None), _S.c.room == sa.bindparam("room")),
    sa.or_(_S.c.device.is_(None), _S.c.device == sa.bindparam("device")),
    sa.or_(_S.c.rule.is_(None), _S.c.rule == sa.bindparam("rule")),
).order_by(_S.c.id).limit(1)
