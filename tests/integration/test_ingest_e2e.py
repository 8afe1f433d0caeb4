"""Published → queryable in InfluxDB, with the inventory's tags and the device's clock skew."""

from __future__ import annotations

import json
import time

from examwatch.kinds import KINDS
from harness.stack import Stack, device_topic, publish_all, telemetry

DEVICES = {
    "gate": "S01-ENT-GATE1",
    "jammer": "S01-R02-JAM1",
    "detector": "S01-R01-DET1",
    "camera": "S01-VAULT-CAM2",
    "power": "S01-VAULT-PWR1",
}


def test_every_kind_lands_with_tags_and_skew(stack: Stack) -> None:
    stack.start_ingest()
    gw = stack.gateway("S01")
    now = time.time_ns() // 1_000_000
    msgs = [(device_topic(stack, dev), telemetry(dev, kind, ts_ms=now - 3000)) for kind, dev in DEVICES.items()]
    publish_all(gw, msgs)
    for kind, dev in DEVICES.items():
        stack.wait_count(kind, 1)
        rows = stack.influx.rows(f'SELECT * FROM "{kind}"')
        assert len(rows) == 1
        row = rows[0]
        ref = stack.inventory.devices[dev]
        assert (row["site"], row["room"], row["kind"], row["device"]) == (ref.site, ref.room, kind, dev)
        assert row["time"] == now - 3000
        assert 3000 <= row["skew_ms"] < 13000, row["skew_ms"]
    jam = stack.influx.rows('SELECT "rf_dbm_n78", "on" FROM "jammer"')[0]
    assert 20 < jam["rf_dbm_n78"] < 35
    assert jam["on"] is True


def test_events_and_status_land(stack: Stack) -> None:
    stack.start_ingest()
    gw = stack.gateway("S01")
    now = time.time_ns() // 1_000_000
    ev = {
        "ts": now,
        "device": "S01-ENT-GATE2",
        "event": "reject",
        "reason": "face_mismatch",
        "attempt": 2,
        "score": 61.5,
    }
    publish_all(
        gw,
        [
            (device_topic(stack, "S01-ENT-GATE2", "event"), json.dumps(ev).encode()),
            (device_topic(stack, "S01-VAULT-PWR1", "status"), b"offline"),
            (device_topic(stack, "S01-R01-JAM1", "telemetry"), telemetry("S01-R01-JAM1", "jammer", drill=True)),
        ],
    )
    stack.wait_count("gate_event", 1)
    row = stack.influx.rows('SELECT * FROM "gate_event"')[0]
    assert (row["event"], row["reason"], row["attempt"], row["score"]) == ("reject", "face_mismatch", 2, 61.5)
    stack.wait_count("device_status", 1)
    status = stack.influx.rows('SELECT * FROM "device_status"')[0]
    assert (status["device"], status["online"]) == ("S01-VAULT-PWR1", False)
    stack.wait_count("jammer", 1, where="\"drill\" = 'true'")


def test_registry_matches_contract() -> None:
    assert set(KINDS) == set(DEVICES)
