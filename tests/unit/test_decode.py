"""The decoder turns each message into a point or a rejection record with its reason."""

from __future__ import annotations

import json
import time

import pytest

from examwatch import sample
from examwatch.inventory import Inventory
from examwatch.rejects import Reason
from harness.stack import telemetry
from ingest.decode import Decoder

INV = Inventory.model_validate(sample.district(formal=1, backup=0, rooms=2))
CAM = "exam/v1/S01/camera/S01-R01-CAM1/telemetry"


@pytest.fixture
def decoder() -> Decoder:
    return Decoder(INV.devices, max_payload_bytes=65_536, max_clock_offset_s=86_400)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_telemetry_point_has_tags_fields_skew_and_device_time(decoder: Decoder) -> None:
    ts = _now_ms() - 2000
    line, reason = decoder.decode(CAM, telemetry("S01-R01-CAM1", "camera", ts_ms=ts), (ts + 2500) * 1_000_000)
    assert reason is None
    assert line is not None
    head, field_set, stamp = line.decode().split(" ")
    assert head == "camera,device=S01-R01-CAM1,kind=camera,room=R01,site=S01"
    assert "recording=true" in field_set
    assert 'resolution="1920x1080"' in field_set
    assert field_set.endswith("skew_ms=2500i")
    assert int(stamp) == ts * 1_000_000


def test_jammer_bands_flatten_and_drill_is_a_tag(decoder: Decoder) -> None:
    topic = "exam/v1/S01/jammer/S01-R02-JAM1/telemetry"
    line, _ = decoder.decode(topic, telemetry("S01-R02-JAM1", "jammer", drill=True), time.time_ns())
    assert line is not None
    text = line.decode()
    assert text.startswith("jammer,device=S01-R02-JAM1,kind=jammer,room=R02,site=S01,drill=true ")
    assert "rf_dbm_n78=" in text
    assert 'mode="schedule"' in text


def test_event_type_is_a_tag(decoder: Decoder) -> None:
    payload = json.dumps({"ts": _now_ms(), "device": "S01-VAULT-PWR1", "event": "mains", "lost": True}).encode()
    line, _ = decoder.decode("exam/v1/S01/power/S01-VAULT-PWR1/event", payload, time.time_ns())
    assert line is not None
    assert line.decode().startswith(
        "power_event,device=S01-VAULT-PWR1,kind=power,room=VAULT,site=S01,event=mains lost=true,"
    )


def test_status_uses_receive_time_and_never_collides(decoder: Decoder) -> None:
    topic = "exam/v1/S01/power/S01-VAULT-PWR1/status"
    now = time.time_ns()
    a, _ = decoder.decode(topic, b"offline", now)
    b, _ = decoder.decode(topic, b"online", now)
    assert a is not None
    assert b is not None
    assert a.decode().split(" ")[1] == "online=false"
    assert int(b.split(b" ")[-1]) == int(a.split(b" ")[-1]) + 1


def test_service_topics_are_not_data(decoder: Decoder) -> None:
    assert decoder.decode("exam/v1/_alarm/S01/power_lost/S01-VAULT-PWR1", b"{}", time.time_ns()) == (None, None)


GOOD = json.loads(telemetry("S01-R01-CAM1", "camera"))


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("exam/v1/S01/camera", b"{}", Reason.BAD_TOPIC),
        ("exam/v2/S01/camera/S01-R01-CAM1/telemetry", b"{}", Reason.BAD_TOPIC),
        ("exam/v1/S01/drone/S01-R01-CAM1/telemetry", b"{}", Reason.UNKNOWN_KIND),
        ("exam/v1/S01/camera/S01-R01-CAM1/debug", b"{}", Reason.UNKNOWN_CHANNEL),
        ("exam/v1/S01/camera/S09-R01-CAM1/telemetry", b"{}", Reason.UNKNOWN_DEVICE),
        ("exam/v1/S02/camera/S01-R01-CAM1/telemetry", b"{}", Reason.TOPIC_MISMATCH),
        (CAM, json.dumps({**GOOD, "device": "S01-R01-CAM2"}).encode(), Reason.TOPIC_MISMATCH),
        (CAM, b"x" * 70_000, Reason.TOO_LARGE),
        (CAM, b'{"ts": "\xc3\x28"}', Reason.NOT_UTF8),
        (CAM, b"[1, 2", Reason.NOT_JSON),
        (CAM, json.dumps({**GOOD, "fps": True}).encode(), Reason.SCHEMA),
        (CAM, json.dumps({**GOOD, "fps": float("nan")}).encode(), Reason.NON_FINITE),
        (CAM, json.dumps({**GOOD, "ts": 1_000_000_000_000}).encode(), Reason.CLOCK_OFFSET),
        ("exam/v1/S01/camera/S01-R01-CAM1/status", b"ONLINE", Reason.BAD_STATUS),
    ],
)
def test_each_fault_has_its_reason(decoder: Decoder, topic: str, payload: bytes, reason: Reason) -> None:
    line, got = decoder.decode(topic, payload, time.time_ns())
    assert got is reason
    assert line is not None
    assert line.startswith(f"ingest_reject,reason={reason.value}".encode())
    assert b"payload=" in line


def test_rejection_keeps_a_truncated_escaped_copy(decoder: Decoder) -> None:
    payload = b'{"a": "quote \\" and\nnewline", ' + b"z" * 1000
    line, _ = decoder.decode(CAM, payload, time.time_ns())
    assert line is not None
    assert b"\n" not in line
    kept = line.split(b"payload=", 1)[1]
    assert len(kept) < 600
