"""The texts sent: alerts, updates, reminders, escalations, all-clears and flood summaries.

One Chinese SMS is 70 characters (UCS-2), the short code and the way to reply included; a text
that does not fit is shortened, never split: first the link goes, then the school's name is cut
and dropped, then the seconds, then the room, and only last the words of what happened. Examples
(``docs/duty-officer.md`` has them all; with ``api.public_url`` set, an alert also carries its
mobile page's link where it fits, before the school's name and the seconds)::

    【考务告警】紧急 S03 北大附中 保密室市电中断 17:42:05 回复“1 K7”确认
    【告警加重】紧急 S03 北大附中 保密室UPS电量低 17:50:02 回复“1 M4”确认
    【考务告警·第2次提醒】紧急 S03 北大附中 保密室市电中断 17:42起未确认 回复“1 K7”确认
    【考务恢复】S03 北大附中 保密室市电中断已恢复 17:58:40 历时16分 张主考已确认
    【考务告警·汇总】屏蔽信号不足 650起 S01、S02、S03等21个考点 07:45起 详见指挥大屏

A drill's texts begin with 【演练】. The contract of what is texted about is
``examwatch.alarm.AlarmTransition``; the words come from the roster and :mod:`notify.labels`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from examwatch.alarm import AlarmTransition, Severity
from examwatch.inventory import Inventory, RoomType
from notify.labels import SEVERITY_EN, SEVERITY_ZH

__all__ = ["AlarmTransition", "Language", "MessageKind", "Place", "Text", "place", "render", "segment_limit"]

Language = Literal["zh", "en"]
MessageKind = Literal["alert", "update", "reminder", "escalation", "all_clear", "summary", "summary_clear"]
#: kinds that ask for an acknowledgement (and carry the short code and the link)
ASKING = ("alert", "update", "reminder", "escalation")
UCS2_SEGMENT, GSM_SEGMENT = 70, 160
_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
            "¿abcdefghijklmnopqrstuvwxyzäöñüà")
_ROOM_EN = {RoomType.STORAGE: "storage room", RoomType.ENTRANCE: "entrance", RoomType.REST: "rest room"}
_HEAD_ZH = {"alert": "【考务告警】", "update": "【告警加重】", "escalation": "【考务告警·升级】",
            "all_clear": "【考务恢复】", "summary": "【考务告警·汇总】", "summary_clear": "【考务恢复·汇总】"}
_HEAD_EN = {"alert": "[Exam alert]", "update": "[Alert worse]", "escalation": "[Exam alert, escalated]",
            "all_clear": "[Exam all-clear]", "summary": "[Exam alerts, summary]",
            "summary_clear": "[Exam all-clear, summary]"}


@dataclass(frozen=True, slots=True)
class Place:
    """Where an alarm is, from the inventory: for routing (kind) and silences (room, device)."""

    site_name: str
    kind: str  # device kind, or "room" / "site" for room and site subjects
    room: str | None
    room_name: str
    room_type: RoomType | None
    device: str | None


def place(inventory: Inventory, t: AlarmTransition) -> Place:
    """Find the alarm's site, room and device kind in the inventory (unknown parts are left blank)."""
    try:
        site = inventory.site(t.site)
    except KeyError:
        return Place(t.site, t.subject_type, None, "", None, t.subject if t.subject_type == "device" else None)
    rooms = {r.id: r for r in site.rooms}
    if t.subject_type == "device":
        ref = inventory.devices.get(t.subject)
        room = rooms.get(ref.room) if ref is not None else None
        kind = ref.kind if ref is not None else "device"
        return Place(site.name, kind, room.id if room else None, room.name if room else "",
                     room.type if room else None, t.subject)
    if t.subject_type == "room":
        room = rooms.get(t.subject.removeprefix(f"{t.site}-"))
        return Place(site.name, "room", room.id if room else None, room.name if room else "",
                     room.type if room else None, None)
    return Place(site.name, "site", None, "", None, None)


@dataclass(frozen=True, slots=True)
class Text:
    """Everything one text says; :func:`render` makes it fit one SMS."""

    kind: MessageKind
    severity: Severity
    drill: bool
    what: str  # the rule's words (notify.labels.rule_words)
    at: str  # HH:MM:SS: fired (alert, update, reminder, escalation), resolved (all-clears), began (summary)
    site: str = ""
    site_name: str = ""
    where: str = ""  # the room's name, in the text's language ('' for a site)
    code: str | None = None  # the alarm's short code: reply "1 <code>"
    link: str | None = None  # the mobile page
    n: int = 0  # the reminder's number
    lasted_min: int | None = None  # all-clear: how long it lasted
    acked_by: str | None = None  # all-clear: who acknowledged it
    count: int = 0  # summary: alarms in the flood
    sites: tuple[str, ...] = ()  # summary: their sites, in order of arrival
    reply: bool = True  # say how to reply (not to a group chat, which cannot)


def segment_limit(text: str) -> int:
    """Characters in one SMS segment for ``text``: 160 in GSM 03.38, else 70 (UCS-2)."""
    return GSM_SEGMENT if all(c in _GSM7 for c in text) else UCS2_SEGMENT


def render(m: Text, language: Language = "zh") -> str:
    """The text for ``m``, in one SMS segment: the first of its variants (fullest first) that fits."""
    text = ""
    for text in _variants(m, language):
        if len(text) <= segment_limit(text):
            return text
    # Only words longer than any roster label allows reach here: cut them, keep the rest.
    over = len(text) - UCS2_SEGMENT
    return render(_shorter(m, over), language) if len(m.what) > 2 else text[:UCS2_SEGMENT]


def _shorter(m: Text, over: int) -> Text:
    keep = max(1, len(m.what) - over - 1)
    return Text(**{**{f: getattr(m, f) for f in m.__dataclass_fields__}, "what": m.what[:keep] + "…"})


def _variants(m: Text, language: Language) -> Iterator[str]:
    name4 = m.site_name[:4]
    at_short = m.at[:5]
    where_short = m.where[:6] if language == "zh" else ""  # a cut English word helps nobody
    if m.link:  # the mobile page is worth more than the school's name (the site id stays) and the seconds
        yield _one(m, language, m.site_name, m.where, m.at, m.link)
        yield _one(m, language, name4, m.where, m.at, m.link)
        yield _one(m, language, "", m.where, m.at, m.link)
        yield _one(m, language, "", m.where, at_short, m.link)
    yield _one(m, language, m.site_name, m.where, m.at, None)
    yield _one(m, language, name4, m.where, m.at, None)
    yield _one(m, language, "", m.where, m.at, None)
    yield _one(m, language, "", m.where, at_short, None)
    yield _one(m, language, "", where_short, at_short, None)
    yield _one(m, language, "", "", at_short, None)


def _one(m: Text, language: Language, name: str, where: str, at: str, link: str | None) -> str:
    return _zh(m, name, where, at, link) if language == "zh" else _en(m, name, where, at, link)


def _sites_zh(sites: tuple[str, ...]) -> str:
    shown = "、".join(sites[:3])
    return shown if len(sites) <= 3 else f"{shown}等{len(sites)}个考点"


def _zh(m: Text, name: str, where: str, at: str, link: str | None) -> str:
    sev = SEVERITY_ZH[m.severity]
    if m.kind == "summary":
        parts = [m.what, f"{m.count}起", _sites_zh(m.sites), f"{at}起", "详见指挥大屏"]
    elif m.kind == "summary_clear":
        parts = [m.what, f"{m.count}起已全部恢复", at]
    elif m.kind == "all_clear":
        parts = [m.site, name, f"{where}{m.what}已恢复", at]
        if m.lasted_min is not None:
            parts.append(f"历时{m.lasted_min}分")
        parts.append(f"{m.acked_by}已确认" if m.acked_by else "")
    else:
        when = f"{at}起未确认" if m.kind in ("reminder", "escalation") else at
        parts = [sev, m.site, name, f"{where}{m.what}", when]
        if m.reply and m.code:
            parts.append(f"回复“1 {m.code}”确认")
        if link:
            parts.append(link)
    head = f"【考务告警·第{m.n}次提醒】" if m.kind == "reminder" else _HEAD_ZH[m.kind]
    return ("【演练】" if m.drill else "") + head + " ".join(p for p in parts if p)


def _en(m: Text, name: str, where: str, at: str, link: str | None) -> str:
    sev = SEVERITY_EN[m.severity]
    place = f"{where}: " if where else ""
    if m.kind == "summary":
        shown = ", ".join(m.sites[:3]) + (f" and {len(m.sites) - 3} more sites" if len(m.sites) > 3 else "")
        parts = [f"{m.what}: {m.count} alarms", shown, f"since {at}", "see the wall"]
    elif m.kind == "summary_clear":
        parts = [f"{m.what}: all {m.count} cleared", at]
    elif m.kind == "all_clear":
        parts = [m.site, name, f"{place}{m.what} cleared", at]
        if m.lasted_min is not None:
            parts.append(f"after {m.lasted_min} min")
        parts.append(f"acked by {m.acked_by}" if m.acked_by else "")
    else:
        when = f"unacked since {at}" if m.kind in ("reminder", "escalation") else at
        parts = [sev, m.site, name, f"{place}{m.what}", when]
        if m.reply and m.code:
            parts.append(f"reply 1 {m.code}")
        if link:
            parts.append(link)
    head = f"[Exam alert, reminder {m.n}]" if m.kind == "reminder" else _HEAD_EN[m.kind]
    return ("[DRILL]" if m.drill else "") + head + " " + " ".join(p for p in parts if p)


def where_words(p: Place, language: Language) -> str:
    """The room, in the text's language ('' for a site, or a room the inventory lacks)."""
    if language == "zh":
        return p.room_name
    return _ROOM_EN.get(p.room_type, p.room or "") if p.room_type is not None else ""
