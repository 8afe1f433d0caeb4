"""The SMS texts made from alarm transitions (the contract: ``examwatch.alarm.AlarmTransition``).

An alert reads ``【考务告警】S03 人大附中 保密室市电中断 17:42:05 请立即处置``; the all-clear
``【考务恢复】S03 人大附中 保密室市电中断已恢复 17:50:12``. A drill carries 【演练】 first. A text
is kept to one SMS segment where it can be: 70 characters when any character needs UCS-2,
160 when all fit GSM 03.38; the site name, then the place, are shortened before the words that
say what happened and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from examwatch.alarm import AlarmTransition
from examwatch.inventory import Inventory, RoomType
from examwatch.roster import Roster

Language = Literal["zh", "en"]
MessageKind = Literal["alert", "reminder", "escalation", "all_clear"]
UCS2_SEGMENT, GSM_SEGMENT = 70, 160
_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
            "¿abcdefghijklmnopqrstuvwxyzäöñüà")
_ROOM_EN = {RoomType.STORAGE: "storage room", RoomType.ENTRANCE: "entrance", RoomType.REST: "rest room"}


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


def segment_limit(text: str) -> int:
    """Characters in one SMS segment for ``text``: 160 in GSM 03.38, else 70 (UCS-2)."""
    return GSM_SEGMENT if all(c in _GSM7 for c in text) else UCS2_SEGMENT


def _fit(head: str, site_id: str, site_name: str, where: str, tail: str) -> str:
    # Shorten what the recipient can do without: first the school's name, then the place.
    for name, loc in ((site_name, where), (site_name[:4], where), ("", where), ("", where[:6]), ("", "")):
        body = " ".join(p for p in (site_id, name, loc + tail) if p)
        text = f"{head} {body}" if head.endswith("]") else head + body  # 【】 is its own separator
        if len(text) <= segment_limit(text):
            return text
    return text


def render(t: AlarmTransition, p: Place, roster: Roster, kind: MessageKind, language: Language, tz: ZoneInfo,
           at_ns: int | None = None, n: int = 0) -> str:
    """The text for ``kind`` of message about ``t`` (``n``: the reminder's number)."""
    when = datetime.fromtimestamp((at_ns if at_ns is not None else t.at_ns) / 1e9, tz).strftime("%H:%M:%S")
    label = roster.labels.get(t.rule)
    if language == "zh":
        what = label.zh if label else (t.message or t.rule)
        where = p.room_name
        head = {"alert": "【考务告警】", "reminder": f"【考务告警·第{n}次提醒】", "escalation": "【考务告警·升级】",
                "all_clear": "【考务恢复】"}[kind]
        tail = f"{what}已恢复 {when}" if kind == "all_clear" else f"{what} {when} 请立即处置"
        drill = "【演练】"
    else:
        what = label.en if label else (t.message or t.rule)
        where = _ROOM_EN.get(p.room_type, p.room or "") if p.room_type is not None else ""
        head = {"alert": "[Exam alert]", "reminder": f"[Exam alert, reminder {n}]",
                "escalation": "[Exam alert, escalated]", "all_clear": "[Exam all-clear]"}[kind]
        tail = f"{what} cleared {when}" if kind == "all_clear" else f"{what} {when} act now"
        drill = "[DRILL]"
        where = f"{where}: " if where else ""
    if t.drill:
        head = drill + head
    return _fit(head, t.site, p.site_name, where, tail)
