"""Every device kind passes the same contract checks (Home Assistant's shared test-kit idea)."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from pydantic import ValidationError

from examwatch import topics
from examwatch.kinds import KINDS, Channel, DeviceKind
from harness.stack import device_spec
from simulators.readings import TELEMETRY

NOW = 1_780_000_000_000

EVENTS: dict[str, list[dict[str, Any]]] = {
    "gate": [
        {"event": "pass", "score": 92.5},
        {"event": "reject", "reason": "liveness", "attempt": 3},
        {"event": "doubtful", "attempts": 3},
    ],
    "jammer": [{"event": "switched", "on": True, "by": "schedule"}, {"event": "fault", "code": 12, "text": "VCO"}],
    "detector": [{"event": "alarm", "zone": 7, "direction": "in"}, {"event": "self_test", "result": "fail"}],
    "camera": [{"event": "alert", "alert": "tamper", "active": True}],
    "power": [{"event": "mains", "lost": True}, {"event": "door", "open": True}, {"event": "intrusion", "zone": "W2"}],
}
UNIT_SUFFIXES = ("_c", "_v", "_a", "_hz", "_pct", "_kbps", "_dbm", "_db", "_s", "_minutes_left")


def _telemetry(kind: DeviceKind) -> dict[str, Any]:
    return TELEMETRY[kind.name](device_spec("D1", kind.name), NOW, random.Random(7), 5)


@pytest.fixture(params=sorted(KINDS), ids=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> DeviceKind:
    return KINDS[request.param]


def test_sample_telemetry_is_valid(kind: DeviceKind) -> None:
    msg = kind.telemetry_adapter.validate_json(json.dumps(_telemetry(kind)))
    assert msg.device == "D1"
    assert msg.ts == NOW


def test_every_event_example_is_valid_and_discriminated(kind: DeviceKind) -> None:
    assert EVENTS[kind.name], "each kind documents at least one event"
    for example in EVENTS[kind.name]:
        msg = kind.event_adapter.validate_json(json.dumps({"ts": NOW, "device": "D1", **example}))
        assert msg.event == example["event"]  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        kind.event_adapter.validate_json(json.dumps({"ts": NOW, "device": "D1", "event": "no-such-event"}))


def test_extra_fields_are_refused(kind: DeviceKind) -> None:
    with pytest.raises(ValidationError, match="extra"):
        kind.telemetry_adapter.validate_json(json.dumps({**_telemetry(kind), "firmware_note": "x"}))


def test_non_finite_numbers_are_refused(kind: DeviceKind) -> None:
    payload = _telemetry(kind)
    name = next(k for k, v in payload.items() if isinstance(v, float))
    for bad in (math.nan, math.inf):
        with pytest.raises(ValidationError, match="finite"):
            kind.telemetry_adapter.validate_json(json.dumps({**payload, name: bad}))


def test_out_of_bounds_numbers_are_refused(kind: DeviceKind) -> None:
    payload = _telemetry(kind)
    name = next(k for k, v in payload.items() if isinstance(v, float))
    with pytest.raises(ValidationError):
        kind.telemetry_adapter.validate_json(json.dumps({**payload, name: 1e9}))


def test_timestamp_must_be_epoch_milliseconds(kind: DeviceKind) -> None:
    with pytest.raises(ValidationError, match="ts"):
        kind.telemetry_adapter.validate_json(json.dumps({**_telemetry(kind), "ts": NOW // 1000}))


def test_every_field_states_its_meaning_or_unit(kind: DeviceKind) -> None:
    for name, info in kind.telemetry.model_fields.items():
        assert info.description or name.endswith(UNIT_SUFFIXES), f"{kind.name}.{name} says neither unit nor meaning"


def test_topic_measurement_and_the_message_check_agree(kind: DeviceKind) -> None:
    """A kind's topic routes to its measurements, and the shared check accepts its sample there."""
    from examwatch.check import MessageCheck  # noqa: PLC0415 - this test only
    from examwatch.compact import DeviceRef, tags  # noqa: PLC0415

    ref = DeviceRef("D1", kind.name, "S01", "R01", tags("S01", "R01", kind.name, "D1"))
    check = MessageCheck({"D1": ref})
    for channel, payload, measurement in (
        (Channel.TELEMETRY, _telemetry(kind), kind.name),
        (Channel.EVENT, {"ts": NOW, "device": "D1", **EVENTS[kind.name][0]}, f"{kind.name}_event"),
    ):
        topic = kind.topic("S01", "D1", channel)
        assert topics.parse(topic) == ("S01", kind.name, "D1", channel.value)
        accepted = check.check(topic, json.dumps(payload).encode(), NOW + 500)
        assert accepted is not None
        assert (accepted.route.measurement, accepted.skew_ms) == (measurement, 500)
        assert kind.measurement(channel) == measurement
    status = check.check(kind.topic("S01", "D1", Channel.STATUS), b"online", NOW)
    assert status is not None
    assert (status.route.measurement, status.online) == ("device_status", True)
