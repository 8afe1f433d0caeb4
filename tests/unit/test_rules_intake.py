"""The intake: only messages in the contract (kinds) from devices in the inventory reach the rules."""

from __future__ import annotations

import json
import time

import pytest

from examwatch.kinds import Channel
from rules.intake import Intake
from rules.world import World
from tests.rules_kit import inventory, timetable


@pytest.fixture
def intake() -> Intake:
    return Intake(World(inventory(), timetable(time.time())))


def _cam(**over: object) -> bytes:
    payload = {"ts": int(time.time() * 1000), "device": "S01-R01-CAM1", "recording": True, "fps": 25.0,
               "bitrate_kbps": 4096.0, "video_loss": False, "tamper": False, **over}
    return json.dumps(payload).encode()


def test_valid_telemetry_event_and_status(intake: Intake) -> None:
    obs = intake.observe("exam/v1/S01/camera/S01-R01-CAM1/telemetry", _cam(drill=True), 1.0)
    assert obs is not None
    assert (obs.ref.id, obs.channel, obs.drill, obs.recv_s) == ("S01-R01-CAM1", Channel.TELEMETRY, True, 1.0)
    event = json.dumps({"ts": int(time.time() * 1000), "device": "S01-R01-CAM1", "event": "alert",
                        "alert": "tamper", "active": True}).encode()
    ev = intake.observe("exam/v1/S01/camera/S01-R01-CAM1/event", event, 2.0)
    assert ev is not None
    assert ev.channel == Channel.EVENT
    status = intake.observe("exam/v1/S01/camera/S01-R01-CAM1/status", b"offline", 3.0)
    assert status is not None
    assert (status.channel, status.online, status.msg) == (Channel.STATUS, False, None)
    assert not intake.refused


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("exam/v1/S01/camera/NOPE-CAM/telemetry", _cam(device="NOPE-CAM"), "unknown_device"),
    ("exam/v1/S02/camera/S01-R01-CAM1/telemetry", _cam(), "unknown_device"),
    ("exam/v1/S01/jammer/S01-R01-CAM1/telemetry", _cam(), "unknown_device"),
    ("exam/v1/S01/camera/S01-R01-CAM1/whatever", _cam(), "unknown_channel"),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", _cam(fps=-1), "schema"),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", b"{not json", "schema"),
    ("exam/v1/S01/camera/S01-R01-CAM1/telemetry", _cam(device="S01-R01-CAM2"), "topic_mismatch"),
    ("exam/v1/S01/camera/S01-R01-CAM1/status", b"maybe", "bad_status"),
    ("garbage", b"", "unknown_device"),
])
def test_refused_and_counted(intake: Intake, topic: str, payload: bytes, reason: str) -> None:
    assert intake.observe(topic, payload, 1.0) is None
    assert intake.refused == {reason: 1}


def test_service_topics_are_ignored_not_refused(intake: Intake) -> None:
    assert intake.observe("exam/v1/_alarm/S01/x/S01", b"{}", 1.0) is None
    assert not intake.refused
