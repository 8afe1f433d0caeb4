"""The SMS people actually received, and the replies they send, as a drill sees the SMS centre.

What reached phones comes from one of two places:

- :func:`fakesmsc_log`: the output of Kannel's test SMSC (``fakesmsc``), which prints every
  message it receives as ``<date> <time> [pid] [thread] DEBUG: Got message N: <from to coding
  body>``; UCS-2 bodies are URL-encoded UTF-16BE, ``data`` bodies URL-encoded bytes. The log's
  times are the machine's local wall time, to the second.
- on a real SMS centre, the notifier's outbox rows whose delivery report said ``delivered``
  (Kannel's ``dlr-url`` callback, recorded by the API): see :mod:`drills.score`.

Replies go the other way: :class:`MoLink` speaks fakesmsc's line protocol
(``<from> <to> text <msg>\\n``, or ``data <url-encoded bytes>`` for anything outside printable
ASCII) to a fake SMSC connection of Kannel that only receives, so Kannel hands the message to its
``sms-service`` as if a phone had replied.
"""

from __future__ import annotations

import re
import socket
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

_GOT = re.compile(
    r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) \[\d+\] \[\d+\] \w+: "
    r"Got message \d+: <(\S+) (\S+) (ucs-2|text|data) (.*)>$"
)


@dataclass(frozen=True)
class Received:
    """One SMS as it reached the SMS centre: sender, recipient, text, and wall time (epoch seconds)."""

    sender: str
    to: str
    text: str
    wall: float


def _decode(coding: str, body: str) -> str:
    if coding == "text":
        return body
    raw = urllib.parse.unquote_to_bytes(body.replace("+", " "))  # form encoding: + is a space
    if coding == "ucs-2":
        return raw.decode("utf-16-be", errors="replace")
    return raw.decode("utf-8", errors="replace")


def fakesmsc_log(path: Path) -> list[Received]:
    """Every message fakesmsc printed in ``path`` (a missing file is no message)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        m = _GOT.match(line)
        if m is None:
            continue
        stamp, sender, to, coding, body = m.groups()
        wall = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
        out.append(Received(sender, to, _decode(coding, body), wall))
    return out


class MoLink:
    """Kannel's receive-only fake SMSC: each connection carries one SMS from a phone, as fakesmsc
    would send it, and ends when Kannel has read it (it closes the link after our end of file)."""

    def __init__(self, host: str, port: int, timeout_s: float = 10.0) -> None:
        self.address = (host, port)
        self.timeout_s = timeout_s

    def send(self, sender: str, to: str, text: str) -> None:
        """Send one SMS from ``sender`` to ``to``; OSError when the SMS centre cannot be reached."""
        with socket.create_connection(self.address, timeout=self.timeout_s) as s:
            s.sendall(line(sender, to, text))
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):  # nothing comes back on this link; wait until Kannel has read the line
                pass

    def close(self) -> None:
        """Nothing stays open between messages."""


def line(sender: str, to: str, text: str) -> bytes:
    """fakesmsc's line for one message: ``text`` when printable ASCII, else ``data`` (URL-encoded UTF-8)."""
    if "\n" in text or "\r" in text:
        raise ValueError("one SMS is one line of fakesmsc's protocol")
    if all(32 <= ord(c) <= 126 for c in text):
        return f"{sender} {to} text {text}\n".encode("ascii")
    return f"{sender} {to} data {urllib.parse.quote(text.encode('utf-8'))}\n".encode("ascii")


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); ValueError with a plain message otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host, int(port)
