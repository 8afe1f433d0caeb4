"""The intake: only messages in the contract (kinds) from devices in the inventory reach the rules."""

from __future__ import annotations

import json
import time

import pytest

from examwatch.kinds import Channel
from harness.rules_kit import inventory, timetable
from rules.intake import Intake
from rules.model import Refusal
from rules.world import World

#: Receive times are near now: the shared check refuses device clocks a day off the receive time.
T = time.time()


@pytest.fixture
def intake() -> Intake:
    return Intake(World(inventory(), timetable(time.time())))


def _cam(**over: object) -> bytes:
    payload = {"ts": int(time.time() * 1000), "device": "S01-R01-CAM1", "recording": True, "fps": 25.0,
               "bitrate_kbps": 4096.0, "video_loss": False, "tamper": False, **over}
    return json.dumps(payload).encode()


def test_valid_telemetry_event_and_status(intake: Intake) -> None:
    obs = intake.observe("exam/v1/S01/camera/S01-R01-CAM1/telemetry", _cam(drill=True), T + 1)
    assert obs is not None
    assert (obs.ref.id, obs.channel, obs.drill, obs.recv_s) == ("S01-R01-CAM1", Channel.TELEMETRY, True, T + 1)
    event = json.dumps({"ts": int(time.time() * 1000), "device": "S01-R01-CAM1", "event": "alert",
                        "alert": "tamper", "active": True}).encode()
    ev = intake.observe("exam/v1/S01/camera/S01-R01-CAM1/event", event, T + 2)
    assert ev is not None
    assert ev.channel == Channel.EVENT
    status = intake.observe("exam/v1/S01/camera/S01-R01-CAM1/status", b"offline", T + 3)
    assert status is not None
    assert (status.channel, status.online, status.msg) == (Channel.STATUS, False, None)
    assert not intake.refused


@pytest.mark.parametrize(("topic", "payload", "reason", "known"), [
    ("exam/v1/S01/camera/NOPE-CAM/telemetry", _cam(device="NOPE-CAM"), "unknown_device", False),
    ("exam/v1/S02/camera/S01-R01-CAM1/telemetry", _cam(), "topic_mismatch", False),
    ("exam/v1/S01/jammer/S01-R01-CAM1/telemetry", _cam(), "topic_mismatch", False),
    ("exam/v1/S01/drone/S01-R01-CAM1/telemetry", _cam(), "unknown_kind", False),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", b"x" * 70_000, "too_large", True),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", _cam(ts=1_000_000_000_000), "clock_offset", True),
    ("exam/v1/S01/camera/S01-R01-CAM1/whatever", _cam(), "unknown_channel", True),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", _cam(fps=-1), "schema", True),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", b"{not json", "not_json", True),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", b"\xff\xfe\x00", "not_utf8", True),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", _cam(fps=float("nan")), "non_finite", True),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", _cam(device="S01-R01-CAM2"), "topic_mismatch", True),
    ("exam/v1/S01/camera/S01-R01-CAM1/status", b"maybe", "bad_status", True),
])
def test_refused_counted_and_attributed(intake: Intake, topic: str, payload: bytes, reason: str, known: bool) -> None:
    got = intake.observe(topic, payload, T + 1)
    assert isinstance(got, Refusal)
    assert (got.reason.partition(":")[0], got.site, got.device, got.ref is not None) == (
        reason, topic.split("/")[2], topic.split("/")[4], known
    )
    assert intake.refused == {reason: 1}


@pytest.mark.parametrize("topic", ["garbage", "exam/v1/S99/camera/S99-R01-CAM1/telemetry"])
def test_refused_without_a_site_of_ours_is_only_counted(intake: Intake, topic: str) -> None:
    assert intake.observe(topic, _cam(), T + 1) is None
    assert sum(intake.refused.values()) == 1


def test_refusal_drill_flag_from_the_payload_else_the_device_last_known(intake: Intake) -> None:
    rogue_topic, rogue_payload = "exam/v1/S01/camera/S01-R09-CAM7/telemetry", _cam(device="S01-R09-CAM7", drill=True)
    claims = intake.observe(rogue_topic, rogue_payload, T + 1)
    assert isinstance(claims, Refusal)
    assert not claims.drill  # an unknown unit's own word does not make its alarm a drill
    intake.world.heard(intake.world.devices["S01-R02-CAM1"], T + 1.5, drill=True)  # a drill runs at S01
    rogue = intake.observe(rogue_topic, rogue_payload, T + 2)
    assert isinstance(rogue, Refusal)
    assert rogue.drill
    garbled = intake.observe("exam/v1/S01/camera/S01-R01-CAM1/telemetry", b"{trunc", T + 1)
    assert isinstance(garbled, Refusal)
    assert not garbled.drill
    intake.world.heard(intake.world.devices["S01-R01-CAM1"], T + 2, drill=True)
    again = intake.observe("exam/v1/S01/camera/S01-R01-CAM1/telemetry", b"{trunc", T + 3)
    assert isinstance(again, Refusal)
    assert again.drill


def test_service_topics_are_ignored_not_refused(intake: Intake) -> None:
    assert intake.observe("exam/v1/_alarm/S01/x/S01", b"{}", T + 1) is None
    assert not intake.refused


@pytest.mark.parametrize("payload", [b"[" * 50_000, b'{"a":' * 50_000, b"{" + b" " * 70_000 + b"}"])
def test_a_payload_nested_too_deep_or_too_large_is_refused_not_a_crash(intake: Intake, payload: bytes) -> None:
    for topic in ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", "exam/v1/S01/camera/S01-R01-CAM1/status",
                  "exam/v1/S01/camera/S01-R09-CAM7/telemetry"):
        assert isinstance(intake.observe(topic, payload, T + 1), Refusal)
