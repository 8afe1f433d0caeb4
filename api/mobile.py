"""The alarm's page for the phone: what the signed link in an alert SMS opens.

A link's token (``examwatch.links``) names one notification: one SMS, to one person, about one
alarm. The page shows that alarm (site, place, severity, state), its timeline (raised, who was
texted and whether it arrived, who acknowledged, commented or closed it) and three forms:
acknowledge, comment, resolve, which act as that person. Server-rendered HTML (Jinja2, escaped),
no script.

Each form carries a value bound to the token, the alarm and the alarm's ``seq`` as the page
showed it (:func:`form_value`): a form from another link is refused, and so is a form sent again
after the alarm moved on (a replay, or a second phone that acted first), so nothing is done twice
or on a state the person did not see.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.world import World
from examwatch.alarm import State
from examwatch.roster import Person, Roster
from examwatch.store import lifecycle
from examwatch.store.lifecycle import AlarmError, AlarmView
from examwatch.store.notify_models import Notification, NotifyAlarm

_N, _NA = cast(sa.Table, Notification.__table__), cast(sa.Table, NotifyAlarm.__table__)
_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(["html"]), auto_reload=False)
SEVERITY = {"critical": "严重", "major": "重要", "minor": "次要", "warning": "提示"}
STATE = {"pending": "待定", "firing": "告警中", "acknowledged": "已确认", "resolved": "已恢复"}
KIND = {"alert": "告警短信", "reminder": "提醒短信", "escalation": "升级短信", "all_clear": "恢复短信"}
DELIVERY = {"delivered": "已送达", "failed": "未送达", "buffered": "待送达", "submitted": "运营商已接收"}
STATUS = {"queued": "排队中", "sent": "已发出", "muted": "静默未发", "failed": "发送失败"}


class PageError(Exception):
    """The link cannot be served: ``status`` and a message for the person (no detail of any alarm)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid link gives: one notification's person acting on its alarm."""

    token: str
    notification_id: int
    person: Person
    alarm: AlarmView
    expires_s: float


def form_value(world: World, token: str, alarm: AlarmView) -> str:
    """The forms' hidden value: HMAC over the token, the alarm and its seq as the page showed it."""
    msg = f"examwatch:page|{token}|{alarm.id}|{alarm.seq}".encode()
    return hmac.new(world.secret.encode(), msg, hashlib.sha256).hexdigest()[:24]


def grant(world: World, roster: Roster, token: str, notification_id: int, expires_s: float) -> Grant:
    """The notification's person and alarm; PageError when either is gone."""
    with world.notify.connect() as conn:
        n = conn.execute(sa.select(_N.c.alarm_id, _N.c.person).where(_N.c.id == notification_id)).first()
    if n is None:
        raise PageError(404, "此链接对应的通知不存在。")
    person = roster.by_id.get(n.person)
    if person is None:
        raise PageError(403, "您已不在值班名单中，此链接不再有效。")
    with world.store.connect() as conn:
        try:
            alarm = lifecycle.get(conn, n.alarm_id)
        except AlarmError:
            raise PageError(404, "此告警不存在。") from None
    return Grant(token, notification_id, person, alarm, expires_s)


def _when(ns: int, tz: ZoneInfo, today: str) -> str:
    t = datetime.fromtimestamp(ns / 1e9, tz)
    return t.strftime("%H:%M:%S") if t.strftime("%m-%d") == today else t.strftime("%m-%d %H:%M")


def timeline(world: World, roster: Roster, alarm: AlarmView, tz: ZoneInfo) -> list[tuple[int, str]]:
    """(ns, what) of everything that happened to the alarm and every text sent about it, in order."""
    names = {p.id: p.name for p in roster.people}
    out: list[tuple[int, str]] = []
    previous: lifecycle.TransitionView | None = None
    for t in lifecycle.history(world.store, alarm.id):
        who = names.get(t.by, t.by)
        if previous is None:
            text = f"告警产生（{SEVERITY.get(t.severity, t.severity)}）"
            text += "，等待持续确认" if t.state == "pending" else ""
        elif t.state == previous.state and t.state != "firing":
            text = f"{who} 备注：{t.comment}" if t.comment else f"{who} 更新"
        elif t.state == "firing" and previous.state == "firing":
            text = f"级别变为{SEVERITY.get(t.severity, t.severity)}"
        elif t.state == "firing":
            text = "告警触发"
        elif t.state == "acknowledged":
            text = f"{who} 确认" + (f"：{t.comment}" if t.comment else "")
        elif t.state == "resolved":
            text = "已自动恢复" if t.by == "rules" else f"{who} 关闭" + (f"：{t.comment}" if t.comment else "")
        else:
            text = STATE.get(t.state, t.state)
        out.append((t.at_ns, text))
        previous = t
    with world.notify.connect() as conn:
        rows = conn.execute(sa.select(_N).where(_N.c.alarm_id == alarm.id).order_by(_N.c.id)).all()
    for n in rows:
        state = DELIVERY.get(n.delivery) or STATUS.get(n.status, n.status)
        who = names.get(n.person, n.person)
        out.append((n.sent_ns or n.created_ns, f"{KIND.get(n.kind, n.kind)} → {who}（{state}）"))
    return sorted(out, key=lambda x: x[0])


def render(world: World, roster: Roster | None, g: Grant | None, notice: str = "", notice_ok: bool = True) -> str:
    """The page for ``g`` (None: only the notice, for a refused link)."""
    if g is None or roster is None:
        return _env.get_template("alarm.html").render(title="考务告警", alarm=None, notice=notice, notice_ok=notice_ok)
    tz = ZoneInfo(world.settings.notify.timezone)
    a = g.alarm
    today = datetime.fromtimestamp(world.clock.now(), tz).strftime("%m-%d")
    label = roster.labels.get(a.rule)
    what = label.zh if label else (a.message or a.rule)
    try:
        site = world.inventory.site(a.site)
        site_text = f"{a.site} {site.name}"
        rooms = {r.id: r.name for r in site.rooms}
    except KeyError:
        site_text, rooms = a.site, {}
    ref = world.inventory.devices.get(a.subject) if a.subject_type == "device" else None
    room = ref.room if ref is not None else a.subject.removeprefix(f"{a.site}-") if a.subject_type == "room" else None
    with world.notify.connect() as conn:
        code = conn.execute(sa.select(_NA.c.code).where(_NA.c.alarm_id == a.id)).scalar_one_or_none()
    ctx: dict[str, Any] = {
        "title": f"{what} · {a.site}", "alarm": a, "what": what, "severity": SEVERITY.get(a.severity, a.severity),
        "state": STATE.get(a.state, a.state), "site": site_text, "place": rooms.get(room or "", room or ""),
        "opened": _when(a.opened_ns, tz, today), "code": code or "", "person": g.person.name,
        "timeline": [(_when(ns, tz, today), text) for ns, text in timeline(world, roster, a, tz)],
        "active": a.state != State.RESOLVED, "can_ack": a.state in (State.FIRING, State.PENDING),
        "form": form_value(world, g.token, a), "expires": _when(int(g.expires_s * 1e9), tz, today),
        "notice": notice, "notice_ok": notice_ok,
    }
    return _env.get_template("alarm.html").render(**ctx)
