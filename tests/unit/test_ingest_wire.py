"""ingest's MQTT reader takes PUBLISH packets apart right, however the bytes are cut into reads."""

from __future__ import annotations

import pytest

from examwatch import mqttwire as wire
from examwatch.settings import MqttSettings
from examwatch.subscriber import ConnectionLost, Subscriber


def _publish(topic: bytes, payload: bytes, qos: int, mid: int = 0, props: bytes = b"") -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"")
    body += wire.varint(len(props)) + props + payload
    return bytes([0x30 | (qos << 1)]) + wire.varint(len(body)) + body


def _subscriber(got: list[tuple[bytes, bytes, int, int]]) -> Subscriber:
    return Subscriber(MqttSettings(), "t", "u", "p", "x/#", lambda t, p, m, e, _r, _d: got.append((t, p, m, e)),
                      session_expiry_s=60, receive_maximum=100)


USER_PROPERTY = b"\x26" + b"\x00\x01k" + b"\x00\x02vv"
PACKETS = [
    (b"exam/v1/S01/camera/C1/telemetry", b'{"a":1}', 1, 7, b""),  # one-byte remaining length
    (b"exam/v1/S01/jammer/J1/telemetry", b"x" * 300, 1, 65535, b""),  # two bytes
    (b"exam/v1/S01/power/P1/status", b"online", 0, 0, USER_PROPERTY),  # QoS 0, properties
    (b"exam/v1/S01/gate/G1/telemetry", b"y" * 20_000, 1, 1, b"\x02\x00\x00\x00\x3c"),  # three bytes, expiry
    (b"exam/v1/S01/gate/G1/telemetry", b"", 1, 2, b"\x01" * 130),  # a two-byte property length
]
STREAM = b"".join(_publish(*p) for p in PACKETS[:2]) + b"\xd0\x00" + b"".join(_publish(*p) for p in PACKETS[2:])
EXPECTED = [(t, p, mid, 1 if qos else 0) for t, p, qos, mid, _ in PACKETS]
_STARTS = [0, len(_publish(*PACKETS[0]))]
_STARTS += [_STARTS[-1] + len(_publish(*PACKETS[1])), _STARTS[-1] + len(_publish(*PACKETS[1])) + 2]
_STARTS += [_STARTS[-1] + len(_publish(*PACKETS[2])), _STARTS[-1] + len(_publish(*PACKETS[2])) + len(_publish(*PACKETS[3]))]
#: every cut within six bytes of a packet's start (its header and length), and inside payloads
CUTS = sorted({c for s in _STARTS for c in range(max(s - 2, 0), s + 6)} | {300, 10_000, len(STREAM) - 1})


@pytest.mark.parametrize("cut", CUTS)
def test_packets_cut_anywhere_come_out_whole(cut: int) -> None:
    got: list[tuple[bytes, bytes, int, int]] = []
    sub = _subscriber(got)
    used = sub._parse(STREAM[:cut], 0)
    rest = STREAM[used:cut] + STREAM[cut:]
    assert sub._parse(rest, 0) == len(rest)
    assert got == EXPECTED


def test_a_broker_disconnect_ends_the_connection_with_its_reason() -> None:
    sub = _subscriber([])
    with pytest.raises(ConnectionLost, match="0x8E session taken over"):
        sub._parse(b"\xe0\x01\x8e", 0)


def test_connack_and_suback_are_read() -> None:
    ack = wire.parse_connack(b"\x01\x00\x03\x13\x00\x3c")
    assert (ack.session_present, ack.reason, ack.server_keepalive) == (True, 0, 60)
    assert wire.parse_connack(b"\x00\x87\x00").reason == 0x87
    assert wire.parse_suback(b"\x00\x01\x00\x01") == [1]
    assert wire.pubacks([1, 258]) == b"\x40\x02\x00\x01\x40\x02\x01\x02"
    for n in (0, 127, 128, 16_383, 16_384, 2_097_151, 268_435_455):
        assert wire.read_varint(wire.varint(n), 0) == (n, len(wire.varint(n)))
