"""One message check: ingest and the rules engine's intake refuse every hostile message alike.

Each case goes to both services, built as they run (ingest's decoder, warmed so that its compiled
fast path is the one asked first; the rules engine's intake on the same inventory), and both must
name the same reason with the same detail.
"""

from __future__ import annotations

import json
import time

import pytest

from examwatch import lineproto
from examwatch.check import Limits, MessageCheck, Refused
from examwatch.rejects import Reason
from harness.rules_kit import inventory, timetable
from harness.stack import telemetry
from ingest.decode import Decoder
from rules.intake import Intake
from rules.model import Refusal
from rules.world import World

INV = inventory()
CAM, JAM = "S01-R01-CAM1", "S01-R01-JAM1"
CAM_T = f"exam/v1/S01/camera/{CAM}/telemetry"
JAM_T = f"exam/v1/S01/jammer/{JAM}/telemetry"
NOW_MS = time.time_ns() // 1_000_000


def _cam(**over: object) -> bytes:
    return json.dumps({**json.loads(telemetry(CAM, "camera", ts_ms=NOW_MS - 1500)), **over}).encode()


def _jam(**over: object) -> bytes:
    return json.dumps({**json.loads(telemetry(JAM, "jammer", ts_ms=NOW_MS - 1500)), **over}).encode()


HOSTILE: list[tuple[str, bytes, Reason]] = [
    ("exam/v1/S01/camera", _cam(), Reason.BAD_TOPIC),
    ("exam/v2/S01/camera/S01-R01-CAM1/telemetry", _cam(), Reason.BAD_TOPIC),
    ("exam/v1/S01/camera//telemetry", _cam(), Reason.BAD_TOPIC),
    ("exam/v1/S01/drone/S01-R01-CAM1/telemetry", _cam(), Reason.UNKNOWN_KIND),
    ("exam/v1/S01/drone/NOPE/telemetry", _cam(), Reason.UNKNOWN_KIND),
    ("exam/v1/S01/camera/S01-R01-CAM1/debug", _cam(), Reason.UNKNOWN_CHANNEL),
    ("exam/v1/S01/camera/NOPE-CAM/telemetry", _cam(device="NOPE-CAM"), Reason.UNKNOWN_DEVICE),
    ("exam/v1/S99/camera/NOPE-CAM/telemetry", _cam(device="NOPE-CAM"), Reason.UNKNOWN_DEVICE),
    ("exam/v1/S02/camera/S01-R01-CAM1/telemetry", _cam(), Reason.TOPIC_MISMATCH),
    (f"exam/v1/S01/jammer/{CAM}/telemetry", _cam(), Reason.TOPIC_MISMATCH),
    (CAM_T, _cam(device="S01-R01-CAM2"), Reason.TOPIC_MISMATCH),
    (CAM_T, b" " * 70_000, Reason.TOO_LARGE),
    ("exam/v1/S01/drone/x/y", b"x" * 70_000, Reason.TOO_LARGE),
    (CAM_T, b'{"ts": "\xc3\x28"}', Reason.NOT_UTF8),
    (CAM_T, b"\xff\xfe\x00", Reason.NOT_UTF8),
    (CAM_T, b"[1, 2", Reason.NOT_JSON),
    (CAM_T, b"", Reason.NOT_JSON),
    (CAM_T, b"[" * 50_000, Reason.NOT_JSON),
    (CAM_T, _cam()[:-1] + b', "fps": NaN}', Reason.NON_FINITE),
    (CAM_T, _cam(fps=float("inf")), Reason.NON_FINITE),
    (CAM_T, _cam(fps=True), Reason.SCHEMA),
    (CAM_T, _cam(fps="25"), Reason.SCHEMA),
    (CAM_T, _cam(fps=-1), Reason.SCHEMA),
    (CAM_T, _cam(recording=1), Reason.SCHEMA),
    (CAM_T, _cam(resolution="1920x1080\n"), Reason.SCHEMA),
    (CAM_T, _cam(firmware="x"), Reason.SCHEMA),
    (CAM_T, _cam(ts=NOW_MS / 1000), Reason.SCHEMA),
    (CAM_T, _cam(ts=float(NOW_MS)), Reason.SCHEMA),
    (CAM_T, _cam(drill="yes"), Reason.SCHEMA),
    (CAM_T, b'{"ts": 1}', Reason.SCHEMA),
    (CAM_T, b"[]", Reason.SCHEMA),
    (JAM_T, _jam(rf_dbm={"n78": 60.0}), Reason.SCHEMA),
    (JAM_T, _jam(rf_dbm={"lte": 20.0}), Reason.SCHEMA),
    (JAM_T, _jam(mode="auto"), Reason.SCHEMA),
    (JAM_T, _jam(channels_on={"n78": 1}), Reason.SCHEMA),
    (f"exam/v1/S01/camera/{CAM}/event", _cam(), Reason.SCHEMA),
    (f"exam/v1/S01/camera/{CAM}/event",
     json.dumps({"ts": NOW_MS, "device": CAM, "alert": "tamper", "active": True}).encode(), Reason.SCHEMA),
    (f"exam/v1/S01/camera/{CAM}/event",
     json.dumps({"ts": NOW_MS, "device": CAM, "event": "\x00never", "active": True}).encode(), Reason.SCHEMA),
    (CAM_T, _cam(ts=1_000_000_000_000), Reason.CLOCK_OFFSET),
    (CAM_T, _cam(ts=NOW_MS + 2 * 86_400_000), Reason.CLOCK_OFFSET),
    (f"exam/v1/S01/camera/{CAM}/status", b"ONLINE", Reason.BAD_STATUS),
    (f"exam/v1/S01/camera/{CAM}/status", b"online\n", Reason.BAD_STATUS),
]


@pytest.fixture
def ingest() -> Decoder:
    decoder = Decoder(INV.devices, 65_536, 86_400)
    for topic, payload in ((CAM_T, _cam()), (JAM_T, _jam())):  # topics seen: their fast path is on
        assert decoder.decode(topic, payload, time.time_ns())[1] is None
        assert decoder.decode(topic, payload, time.time_ns())[1] is None
    return decoder


@pytest.fixture
def intake() -> Intake:
    return Intake(World(INV, timetable(time.time())), Limits())


@pytest.mark.parametrize(("topic", "payload", "reason"), HOSTILE, ids=[f"{r.value}-{i}" for i, (_, _, r) in enumerate(HOSTILE)])
def test_ingest_and_rules_refuse_alike(ingest: Decoder, intake: Intake, topic: str, payload: bytes, reason: Reason) -> None:
    recv_ns = time.time_ns()
    with pytest.raises(Refused) as raised:
        MessageCheck(INV.devices).check(topic, payload, recv_ns // 1_000_000)
    assert raised.value.reason is reason, raised.value.detail
    line, got = ingest.decode(topic, payload, recv_ns)
    assert got is reason
    assert line is not None
    assert line.startswith(f"ingest_reject,reason={reason.value}".encode())
    assert f"detail={lineproto.quote(raised.value.detail[:300])},".encode() in line
    observed = intake.observe(topic, payload, recv_ns / 1e9)
    assert intake.refused == {reason: 1}
    if observed is not None:  # a refusal under a site of ours is handed to the intake rules
        assert isinstance(observed, Refusal)
        assert (observed.reason, observed.detail) == (reason, raised.value.detail)
    else:
        assert reason is Reason.BAD_TOPIC or topic.split("/")[2] not in intake.world.by_site


def test_a_refusal_names_the_device_only_when_the_topic_names_ours() -> None:
    check = MessageCheck(INV.devices)
    now = time.time_ns() // 1_000_000
    cases = {
        (CAM_T, _cam(fps=-1)): CAM,  # our device, its payload broke the contract
        (f"exam/v1/S01/camera/{CAM}/debug", b"{}"): CAM,
        ("exam/v1/S02/camera/S01-R01-CAM1/telemetry", _cam()): None,  # ours, but not at S02
        ("exam/v1/S01/camera/NOPE/telemetry", _cam()): None,
    }
    for (topic, payload), device in cases.items():
        with pytest.raises(Refused) as raised:
            check.check(topic, payload, now)
        assert (raised.value.ref.id if raised.value.ref else None) == device, topic
        assert raised.value.parts is not None
        assert raised.value.parts.site == topic.split("/")[2]


def test_limits_come_from_ingest_settings_for_both() -> None:
    check = MessageCheck(INV.devices, Limits(max_payload_bytes=300, max_clock_offset_s=10))
    with pytest.raises(Refused, match="too_large"):
        check.check(CAM_T, _cam(resolution=None, nvr_used_pct=None, pad=None)[:-1] + b" " * 300 + b"}", NOW_MS)
    with pytest.raises(Refused, match="clock_offset"):
        check.check(CAM_T, _cam(), NOW_MS + 20_000)
    assert check.check(CAM_T, _cam(), NOW_MS) is not None


def test_service_topics_are_no_device_messages() -> None:
    assert MessageCheck(INV.devices).check("exam/v1/_alarm/S01/x/S01", b"\xff" * 100_000, NOW_MS) is None
