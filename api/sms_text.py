"""What an SMS reply says, and the one-line answers sent back (Chinese, one UCS-2 segment).

A reply is ``<action> [<code>] [<words>]``:

- ``1`` or ``1 <code>``: acknowledge (words after it are kept as a comment);
- ``2 <comment>`` or ``2 <code> <comment>``: acknowledge with a comment (a comment only, once it
  is acknowledged);
- ``0`` or ``0 <code>``: escalate now (the notifier tells the next roster level at once).

Phones type in many ways, so the action and the code are read NFKC-normalised (full-width ``１``
is ``1``), and the action may be followed by a space or by Chinese or Western punctuation
(``1，A3F``); a comment is kept as typed. Whether a
word is an alarm's code is decided later, against the codes of open alarms; here a code is only a
candidate: 1 to 8 ASCII letters and digits.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

#: longer replies are refused whole (an SMS of four UCS-2 parts is 268 characters)
MAX_CHARS = 300
#: one UCS-2 SMS segment
SEGMENT = 70
Action = Literal["ack", "comment", "escalate"]
_ACTIONS: dict[str, Action] = {"1": "ack", "2": "comment", "0": "escalate"}
_SEP = r"[\s,，.。:：;；、/]"
_SEP_RE = re.compile(_SEP)
_CODE = re.compile(r"^[A-Za-z0-9]{1,8}$")


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply understood: its action, the first word (a code candidate or not) and the rest."""

    action: Action
    first: str  # the first word after the action ('' if none)
    rest: str  # everything after the first word, stripped
    whole: str  # everything after the action, stripped

    @property
    def code(self) -> str | None:
        """The first word, upper-cased, if it can be a code."""
        return self.first.upper() if _CODE.match(self.first) else None


@dataclass(frozen=True, slots=True)
class NotUnderstood:
    """Why a reply could not be read: ``garbage``, ``too_long`` or ``empty``."""

    reason: Literal["garbage", "too_long", "empty"]


def normalise(text: str) -> str:
    """Control characters out, blanks squeezed, ends stripped (the words are kept as typed)."""
    text = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    return re.sub(r"\s+", " ", text).strip()


def parse(text: str) -> Reply | NotUnderstood:
    """What ``text`` (already decoded) asks for. The action and the code are read NFKC-normalised
    (full-width ``１`` is ``1``); a comment is kept as typed."""
    if len(text) > MAX_CHARS:
        return NotUnderstood("too_long")
    clean = normalise(text)
    if not clean:
        return NotUnderstood("empty")
    action = unicodedata.normalize("NFKC", clean[0])
    after = clean[1:]
    if action not in _ACTIONS or (after and not _SEP_RE.match(after)):
        return NotUnderstood("garbage")
    whole = _SEP_RE.sub("", after, count=1).strip() if after else ""
    whole = re.sub(rf"^{_SEP}+", "", whole)
    parts = re.split(rf"{_SEP}+", whole, maxsplit=1)
    first = parts[0]
    rest = parts[1].strip() if len(parts) > 1 else ""
    return Reply(_ACTIONS[action], unicodedata.normalize("NFKC", first), rest, whole)


def fit(text: str, limit: int = SEGMENT) -> str:
    """``text`` cut to ``limit`` characters, with … when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# The answers. Each names the alarm by its code and, where it helps, what it is, in one segment.
HELP = "未能识别。回复1确认，2 备注=确认并备注，0=立即升级；多条告警时在数字后加编码"
TOO_LONG = f"回复过长（限{MAX_CHARS}字），未处理。请简短回复，如：1 编码"
BAD_ENCODING = "无法识别该短信的编码，未处理。请重新发送，如：1 编码"
NO_OPEN = "您当前没有待处理的告警，无需确认"
EMPTY_COMMENT = "请在2后写备注，如：2 编码 已到现场"


def unknown_code(code: str) -> str:
    return fit(f"编码{code}无效或已关闭，未处理。请核对短信中的编码")


def ambiguous(codes: list[str], action: Action = "ack") -> str:
    how = {"ack": "“1 编码”确认", "comment": "“2 编码 备注”", "escalate": "“0 编码”升级"}[action]
    head = f"您有{len(codes)}条告警待处理，请回复{how}："
    return fit(head + " ".join(codes))


def acknowledged(code: str, what: str) -> str:
    return fit(f"已确认告警{code}（{what}），提醒停止。谢谢")


def acknowledged_with_comment(code: str, what: str) -> str:
    return fit(f"已确认告警{code}（{what}）并记录备注，提醒停止")


def commented(code: str) -> str:
    return fit(f"已为告警{code}记录备注")


def already(code: str, by: str) -> str:
    return fit(f"告警{code}已由{by}确认，无需重复确认")


def closed(code: str) -> str:
    return fit(f"告警{code}已恢复或已关闭，无需处理")


def escalated(code: str) -> str:
    return fit(f"已请求立即升级告警{code}，将通知上一级值班人员")


def escalate_failed(code: str) -> str:
    return fit(f"升级告警{code}的请求未能送达，请直接致电指挥中心")


def failed(code: str) -> str:
    return fit(f"告警{code}暂时无法确认，请稍后重发或致电指挥中心")


__all__ = ["MAX_CHARS", "SEGMENT", "NotUnderstood", "Reply", "fit", "normalise", "parse"]
