"""Every kind of bad input becomes an ``ingest_reject`` record with its reason; neighbours are written."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as paho
import pytest

from examwatch import credentials, mqtt, topics
from harness.stack import Stack, device_topic, publish_all, telemetry

GOOD = "S01-R01-CAM1"


def _bad_messages(stack: Stack) -> list[tuple[str, str, bytes]]:
    now = time.time_ns() // 1_000_000
    cam = device_topic(stack, GOOD)
    good = json.loads(telemetry(GOOD, "camera"))
    return [
        ("not_json", cam, b"{recording: yes"),
        ("not_utf8", cam, b'{"ts": 1, "device": "\xff\xfe"}'),
        ("schema", cam, json.dumps({**good, "fps": "fast"}).encode()),  # wrong type
        ("schema", cam, json.dumps({**good, "fps": 500}).encode()),  # out of bounds
        ("schema", cam, json.dumps({**good, "colour": "red"}).encode()),  # extra field
        ("schema", cam, json.dumps({k: v for k, v in good.items() if k != "fps"}).encode()),  # missing
        ("non_finite", cam, json.dumps({**good, "fps": float("nan")}).encode()),
        ("non_finite", cam, json.dumps({**good, "bitrate_kbps": float("inf")}).encode()),
        ("too_large", cam, json.dumps({**good, "resolution": "x" * 70_000}).encode()),
        ("clock_offset", cam, json.dumps({**good, "ts": now - 25 * 3600 * 1000}).encode()),
        ("clock_offset", cam, json.dumps({**good, "ts": now + 25 * 3600 * 1000}).encode()),
        ("topic_mismatch", cam, json.dumps({**good, "device": "S01-R01-CAM2"}).encode()),
        ("topic_mismatch", topics.device_topic("S01", "jammer", GOOD, "telemetry"), telemetry(GOOD, "camera")),
        (
            "unknown_device",
            topics.device_topic("S01", "camera", "S01-R99-CAM9", "telemetry"),
            telemetry("S01-R99-CAM9", "camera"),
        ),
        ("unknown_kind", topics.device_topic("S01", "drone", GOOD, "telemetry"), b"{}"),
        ("unknown_channel", device_topic(stack, GOOD, "debug"), b"{}"),
        ("bad_status", device_topic(stack, GOOD, "status"), b"sleeping"),
    ]


def test_every_bad_input_is_recorded_and_neighbours_written(stack: Stack) -> None:
    stack.start_ingest()
    gw = stack.gateway("S01")
    bad = _bad_messages(stack)
    msgs: list[tuple[str, bytes]] = []
    for _, topic, payload in bad:  # a good message on each side of every bad one
        msgs += [(device_topic(stack, GOOD), telemetry(GOOD, "camera", ts_ms=time.time_ns() // 1_000_000 - len(msgs)))]
        msgs += [(topic, payload)]
    msgs += [(device_topic(stack, GOOD), telemetry(GOOD, "camera", ts_ms=time.time_ns() // 1_000_000 - len(msgs)))]
    publish_all(gw, msgs)
    stack.wait_count("ingest_reject", len(bad))
    stack.wait_count("camera", len(bad) + 1)
    rows = stack.influx.rows('SELECT * FROM "ingest_reject"')
    assert sorted(r["reason"] for r in rows) == sorted(reason for reason, _, _ in bad)
    unknown = next(r for r in rows if r["reason"] == "unknown_device")
    assert unknown["device"] == "S01-R99-CAM9"
    assert unknown["site"] == "S01"
    assert "S01-R99-CAM9" in unknown["payload"]
    big = next(r for r in rows if r["reason"] == "too_large")
    assert big["size"] > 70_000
    assert len(big["payload"]) <= 512
    schema = [r["detail"] for r in rows if r["reason"] == "schema"]
    assert any("fps" in d for d in schema)
    assert any("colour" in d for d in schema)
    assert stack.count("camera") == len(bad) + 1


def test_broker_refuses_publishing_outside_own_topic(stack: Stack) -> None:
    """A device's credentials only cover its own topics; anonymous and wrong passwords are refused."""
    stack.start_ingest()
    dev = stack.client("S01-R01-JAM1")
    own = device_topic(stack, "S01-R01-JAM1")
    other = device_topic(stack, "S01-R02-JAM1")  # another room's jammer
    other_site = topics.device_topic("S02", "jammer", "S01-R01-JAM1", "telemetry")
    publish_all(
        dev,
        [
            (other, telemetry("S01-R02-JAM1", "jammer")),
            (other_site, telemetry("S01-R01-JAM1", "jammer")),
            ("exam/v1/S01/jammer", b"{}"),  # malformed topics are outside every ACL too
            (own, telemetry("S01-R01-JAM1", "jammer")),
        ],
    )
    stack.wait_count("jammer", 1)
    # Nothing from the refused publishes reached ingest, not even as a rejection.
    assert stack.count("ingest_reject") == 0
    assert {r["device"] for r in stack.influx.rows('SELECT "skew_ms" FROM "jammer" GROUP BY "device"')} == {
        "S01-R01-JAM1"
    }

    wrong = mqtt.client(stack.settings.mqtt, "t-wrong", "S01-R01-JAM1", "not-the-password")
    with pytest.raises(mqtt.ConnectRefused):
        mqtt.connect_and_wait(wrong, stack.settings.mqtt, clean_start=True)
    anon = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="t-anon", protocol=paho.MQTTv5)
    with pytest.raises(mqtt.ConnectRefused):
        mqtt.connect_and_wait(anon, stack.settings.mqtt, clean_start=True)
    # A device cannot read the stream either; only services can.
    assert credentials.password(stack.secret, "svc-ingest") != credentials.password(stack.secret, "S01-R01-JAM1")
