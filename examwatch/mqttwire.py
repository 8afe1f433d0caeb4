"""The MQTT v5 packets the services' subscriber sends and reads (OASIS MQTT 5.0, section 3).

Only what a persistent-session QoS 1 subscriber needs: CONNECT (session expiry, receive maximum),
CONNACK, SUBSCRIBE, SUBACK, PUBACK, PINGREQ/PINGRESP and DISCONNECT. PUBLISH is parsed inline
in ``examwatch.subscriber``'s read loop, where every microsecond counts.
"""

from __future__ import annotations

from dataclasses import dataclass

CONNACK, PUBLISH, SUBACK, PINGRESP, DISCONNECT = 0x20, 0x30, 0x90, 0xD0, 0xE0
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # normal disconnection: the session (and its queue) stays

#: CONNACK and DISCONNECT reason codes worth naming in a log line (MQTT 5.0, 3.2.2.2 and 3.14.2.1)
REASONS = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error", 0x83: "implementation specific error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid", 0x86: "bad user name or password",
    0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned",
    0x8B: "server shutting down", 0x8C: "bad authentication method", 0x8D: "keep alive timeout",
    0x8E: "session taken over", 0x8F: "topic filter invalid", 0x90: "topic name invalid",
    0x93: "receive maximum exceeded", 0x95: "packet too large", 0x97: "quota exceeded",
    0x9C: "use another server", 0x9D: "server moved", 0x9F: "connection rate exceeded",
}


class MalformedPacket(Exception):
    """The broker sent bytes that are not MQTT: the connection cannot continue."""


def reason_text(code: int) -> str:
    """``0x87 not authorized``."""
    return f"0x{code:02X} {REASONS.get(code, 'error')}"


def varint(n: int) -> bytes:
    """A Variable Byte Integer (1.5.5)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(buf: bytes, i: int) -> tuple[int, int] | None:
    """(value, index after it) of the Variable Byte Integer at ``buf[i]``; None if ``buf`` ends first."""
    value, shift = 0, 0
    for k in range(4):
        if i + k >= len(buf):
            return None
        b = buf[i + k]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i + k + 1
        shift += 7
    raise MalformedPacket("a variable byte integer longer than 4 bytes")


def _string(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect(client_id: str, username: str, password: str, keepalive_s: int, *, clean_start: bool,
            session_expiry_s: int, receive_maximum: int) -> bytes:
    """CONNECT (3.1) with user name, password and the session properties."""
    flags = 0x80 | 0x40 | (0x02 if clean_start else 0)
    props = b""
    if session_expiry_s:
        props += b"\x11" + session_expiry_s.to_bytes(4, "big")
    if receive_maximum:
        props += b"\x21" + receive_maximum.to_bytes(2, "big")
    body = (_string("MQTT") + b"\x05" + bytes([flags]) + keepalive_s.to_bytes(2, "big") + varint(len(props)) + props
            + _string(client_id) + _string(username) + _string(password))
    return _packet(0x10, body)


def subscribe(packet_id: int, topic_filter: str, qos: int) -> bytes:
    """SUBSCRIBE (3.8) to one filter; retained messages are sent as the broker does by default."""
    return _packet(0x82, packet_id.to_bytes(2, "big") + b"\x00" + _string(topic_filter) + bytes([qos]))


def pubacks(mids: list[int]) -> bytes:
    """PUBACKs (3.4) with the success reason, which a two-byte remaining length implies."""
    return b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)


@dataclass(frozen=True)
class ConnAck:
    session_present: bool
    reason: int
    #: Server Keep Alive (0x13): the broker's keep-alive, which then replaces ours
    server_keepalive: int | None


def _properties(body: bytes, i: int) -> tuple[dict[int, int], int]:
    """The integer-valued properties of a property block at ``body[i]`` (others skipped); index after."""
    got = read_varint(body, i)
    if got is None:
        raise MalformedPacket("truncated properties")
    length, i = got
    end, out = i + length, {}
    while i < end:
        pid = body[i]
        i += 1
        if pid in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):  # one byte
            out[pid], i = body[i], i + 1
        elif pid in (0x13, 0x21, 0x22, 0x23):  # two bytes
            out[pid], i = int.from_bytes(body[i:i + 2], "big"), i + 2
        elif pid in (0x02, 0x11, 0x18, 0x27):  # four bytes
            out[pid], i = int.from_bytes(body[i:i + 4], "big"), i + 4
        elif pid == 0x0B:  # subscription identifier
            got = read_varint(body, i)
            if got is None:
                raise MalformedPacket("truncated subscription identifier")
            out[pid], i = got
        elif pid in (0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F):  # string or binary
            i += 2 + int.from_bytes(body[i:i + 2], "big")
        elif pid == 0x26:  # user property: two strings
            i += 2 + int.from_bytes(body[i:i + 2], "big")
            i += 2 + int.from_bytes(body[i:i + 2], "big")
        else:
            raise MalformedPacket(f"unknown property 0x{pid:02X}")
    return out, end


def parse_connack(body: bytes) -> ConnAck:
    """A CONNACK's flags, reason code and Server Keep Alive."""
    if len(body) < 2:
        raise MalformedPacket("short CONNACK")
    props = _properties(body, 2)[0] if len(body) > 2 else {}
    return ConnAck(bool(body[0] & 1), body[1], props.get(0x13))


def parse_suback(body: bytes) -> list[int]:
    """A SUBACK's reason codes (granted QoS, or ≥ 0x80 for a refusal)."""
    _, i = _properties(body, 2)
    return list(body[i:])


def parse_disconnect(body: bytes) -> int:
    """A broker's DISCONNECT reason code (0 when it gives none)."""
    return body[0] if body else 0
