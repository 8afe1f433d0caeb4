"""The rules engine as a process on real mosquitto and influxd: MQTT in; store, InfluxDB and MQTT out."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from examwatch import credentials, mqtt
from examwatch.bands import EXAM_ROOM_BANDS
from examwatch.store import lifecycle
from harness.rules_kit import TEST_RULES, Heartbeat, RulesProcess, alarms, timetable, transitions
from harness.servers import wait_for
from harness.stack import Stack, device_topic

JAM = "S01-R01-JAM1"
JAMMER_TIMEOUT_S = next(r["timeout_s"] for r in TEST_RULES["jammer"] if r["type"] == "absence")
DEVICE_TIMEOUTS_S = [r["timeout_s"] for k, rs in TEST_RULES.items() if k != "site" for r in rs if r["type"] == "absence"]


@pytest.fixture
def paper_now(stack: Stack) -> Iterator[RulesProcess]:
    """The engine, with a paper in session now at S01 only (S02 and S03 have none)."""
    tt = timetable(time.time(), start_in_s=-60).model_copy()
    tt = tt.model_copy(update={"papers": tuple(p.model_copy(update={"sites": ("S01",)}) for p in tt.papers)})
    proc = RulesProcess(stack, tt)
    yield proc
    proc.stop()


def watch(stack: Stack, topic: str, service: str = "notifier") -> dict[str, Any]:
    """Collect the payloads of retained and live messages on ``topic``, as ``service`` would."""
    got: dict[str, Any] = {"msgs": []}

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        got["msgs"].append((msg.topic, json.loads(msg.payload)))

    c = stack.client(credentials.service_user(service), on_message=on_message)
    c.subscribe(topic, qos=1)
    return got


def influx_alarms(stack: Stack, where: str = "") -> list[dict[str, Any]]:
    return stack.influx.rows('SELECT * FROM "alarm"' + (f" WHERE {where}" if where else ""))


def wait_alarm(proc: RulesProcess, where: str, state: str = "firing", timeout: float = 20) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [a for a in alarms(proc.store, where) if a["state"] == state]
        return bool(found)

    wait_for(seen, timeout, f"an alarm {where} in state {state}", interval=0.1)
    return found[0]


def low(band_dbm: float) -> dict[str, Any]:
    return {"rf_dbm": {b.value: (band_dbm if b is EXAM_ROOM_BANDS[3] else 27.0) for b in EXAM_ROOM_BANDS}}


def test_band_drop_during_paper_is_critical_and_outside_raises_nothing(
    stack: Stack, paper_now: RulesProcess
) -> None:
    live = watch(stack, "exam/v1/_alarm/#")
    with Heartbeat(stack) as hb:
        hb.wait_rounds(1)
        paper_now.start()
        hb.wait_rounds(2)
        hb.over[JAM] = hb.over["S02-R01-JAM1"] = low(5.0)
        a = wait_alarm(paper_now, "rule = 'jammer_shielding'")
        assert (a["subject"], a["severity"], a["subject_type"]) == (JAM, "critical", "device")
        assert "dcs1800 5 dBm < 20" in a["message"]
        wait_for(
            lambda: influx_alarms(stack, "\"rule\" = 'jammer_shielding'"), 10, "the alarm point in InfluxDB"
        )
        point = influx_alarms(stack, "\"rule\" = 'jammer_shielding'")[0]
        assert (point["site"], point["subject"], point["subject_type"], point["severity"]) == (
            "S01",
            JAM,
            "device",
            "critical",
        )
        assert (point["state"], point["active"], point["alarm_id"]) == ("firing", True, a["id"])
        assert "drill" not in point or point["drill"] is None
        topic = f"exam/v1/_alarm/S01/jammer_shielding/{JAM}"
        wait_for(lambda: any(t == topic for t, _ in live["msgs"]), 10, "the alarm on MQTT")
        payload = next(p for t, p in live["msgs"] if t == topic)
        assert (payload["state"], payload["severity"], payload["transition_id"]) == (
            "firing",
            "critical",
            f"{a['id']}.1",
        )
        hb.wait_rounds(3)
        assert alarms(paper_now.store, "subject = 'S02-R01-JAM1'") == []
        hb.over.clear()
        wait_alarm(paper_now, "rule = 'jammer_shielding'", state="resolved")


def test_silent_device_offline_then_recovers_and_last_will(stack: Stack, paper_now: RulesProcess) -> None:
    with Heartbeat(stack) as hb:
        hb.wait_rounds(1)
        paper_now.start()
        hb.skip.add("S01-R02-CAM1")
        a = wait_alarm(paper_now, "rule = 'camera_offline'")
        assert a["subject"] == "S01-R02-CAM1"
        assert alarms(paper_now.store, "rule = 'site_silent'") == []
        hb.skip.clear()
        wait_alarm(paper_now, "rule = 'camera_offline'", state="resolved")
        # a real Last Will: the device disconnects asking the broker to send its will
        dev = "S01-R03-JAM1"
        c = mqtt.client(stack.settings.mqtt, dev, dev, credentials.password(stack.secret, dev))
        c.will_set(device_topic(stack, dev, "status"), b"offline", qos=1, retain=True)
        mqtt.connect_and_wait(c, stack.settings.mqtt, clean_start=True)
        hb.skip.add(dev)  # it falls silent too, as a device gone from the network does
        hb.wait_rounds(1)
        last = hb.last_sent[dev]
        c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=4))
        c.loop_stop()
        a = wait_alarm(paper_now, f"subject = '{dev}' AND rule = 'jammer_offline'", timeout=20)
        # the Last Will, not the absence timeout, took it offline: its own words, and (on the
        # engine's clock, the wall here) before the timeout since its last report had run out
        assert "Last Will" in a["message"], a["message"]
        assert a["opened_ns"] / 1e9 < last + JAMMER_TIMEOUT_S


def test_silent_site_raises_one_alarm_and_suppresses_children(stack: Stack, paper_now: RulesProcess) -> None:
    with Heartbeat(stack) as hb:
        hb.wait_rounds(1)
        paper_now.start()
        hb.wait_rounds(2)
        hb.sites.discard("S02")
        wait_alarm(paper_now, "rule = 'site_silent' AND subject = 'S02'")
        # the devices' own absence timeouts pass while the site stays silent (plus the engine's
        # silence hold, when the stream would stall: it does not, the other sites speak)
        s02_last = max(t for d, t in hb.last_sent.items() if d.startswith("S02-"))
        wait_for(lambda: time.time() > s02_last + max(DEVICE_TIMEOUTS_S) + 1.0, 30, "the devices' timeouts to pass")
        hb.wait_rounds(2)
        s02 = alarms(paper_now.store, "site = 'S02'")
        assert [(a["rule"], a["subject_type"]) for a in s02] == [("site_silent", "site")]
        hb.skip.add("S02-R01-CAM1")
        hb.sites.add("S02")
        wait_alarm(paper_now, "rule = 'site_silent'", state="resolved")
        a = wait_alarm(paper_now, "rule = 'camera_offline'")
        assert a["subject"] == "S02-R01-CAM1"
        hb.wait_rounds(3)
        assert len(alarms(paper_now.store, "site = 'S02' AND rule != 'site_silent'")) == 1


def test_coverage_gap_in_a_room_in_session(stack: Stack, paper_now: RulesProcess) -> None:
    with Heartbeat(stack) as hb:
        hb.wait_rounds(1)
        paper_now.start()
        hb.skip.add("S01-R02-JAM1")
        a = wait_alarm(paper_now, "rule = 'room_coverage'")
        assert (a["subject"], a["subject_type"], a["severity"]) == ("S01-R02", "room", "critical")
        wait_for(lambda: influx_alarms(stack, "\"subject\" = 'S01-R02'"), 10, "the coverage point")


def test_readiness_at_t_minus_30(stack: Stack) -> None:
    proc = RulesProcess(stack, timetable(time.time(), start_in_s=1800 + 4))
    live = watch(stack, "exam/v1/_readiness/#", service="api")
    try:
        with Heartbeat(stack) as hb:
            hb.over["S01-R02-CAM1"] = hb.over["S01-R02-CAM2"] = {"recording": False}
            hb.wait_rounds(1)
            proc.start()
            wait_for(lambda: len(live["msgs"]) >= 3, 20, "readiness of three sites on MQTT")
        by_site = {p["site"]: p for _, p in live["msgs"]}
        assert (by_site["S02"]["go"], by_site["S03"]["go"]) == (True, True)
        assert (by_site["S01"]["go"], by_site["S01"]["rooms"]["R02"]["go"]) == (False, False)
        assert "S01-R02-CAM1 not recording" in by_site["S01"]["detail"]
        wait_for(
            lambda: len(stack.influx.rows('SELECT "go" FROM "readiness" WHERE "room" = \'_site\'')) == 3,
            10,
            "readiness points",
        )
        with proc.store.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM readiness WHERE room = '_site'").scalar() == 3
    finally:
        proc.stop()


def test_acknowledge_from_the_cli_reaches_influx_and_mqtt(stack: Stack) -> None:
    proc = RulesProcess(stack, timetable(time.time(), start_in_s=86_400))
    live = watch(stack, "exam/v1/_alarm/+/power_mains_lost/#")
    try:
        with Heartbeat(stack) as hb:
            hb.wait_rounds(1)
            proc.start()
            hb.over["S03-VAULT-PWR1"] = {"mains_v": 0.0, "on_ups": True, "frequency_hz": 0.0}
            a = wait_alarm(proc, "rule = 'power_mains_lost'")
            assert a["severity"] == "critical"
            out = proc.cli("ack", str(a["id"]), "--by", "王老师", "--comment", "power bureau called")
            assert out.returncode == 0, out.stderr
            assert "acknowledged" in proc.cli("list").stdout
            wait_for(
                lambda: any(p["state"] == "acknowledged" for _, p in live["msgs"]), 10, "the ack on MQTT"
            )
            ack = next(p for _, p in live["msgs"] if p["state"] == "acknowledged")
            assert (ack["by"], ack["comment"], ack["active"]) == ("王老师", "power bureau called", True)
            wait_for(lambda: influx_alarms(stack, "\"state\" = 'acknowledged'"), 10, "the ack in InfluxDB")
            hb.over.clear()
            wait_alarm(proc, "rule = 'power_mains_lost'", state="resolved")
        hist = lifecycle.history(proc.store, a["id"])
        assert [(t.state, t.by) for t in hist] == [
            ("firing", "rules"),
            ("acknowledged", "王老师"),
            ("resolved", "rules"),
        ]
    finally:
        proc.stop()


def test_sighup_reloads_rules_and_keeps_alarms(stack: Stack, paper_now: RulesProcess) -> None:
    with Heartbeat(stack) as hb:
        hb.wait_rounds(1)
        paper_now.start()
        hb.over[JAM] = low(5.0)
        a = wait_alarm(paper_now, "rule = 'jammer_shielding'")
        (paper_now.rules_dir / "gate.yaml").write_text(
            "rules:\n  - {name: gate_offline, type: absence, timeout_s: 0}\n"
        )
        paper_now.signal(signal.SIGHUP)
        wait_for(lambda: "rules not reloaded" in paper_now.log(), 10, "the broken reload to be refused")
        (paper_now.rules_dir / "gate.yaml").write_text(
            "rules:\n  - {name: gate_offline, type: absence, timeout_s: 4}\n"
        )
        paper_now.signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in paper_now.log().split("rules not reloaded")[-1], 10, "the reload")
        hb.wait_rounds(3)
        assert [x["id"] for x in alarms(paper_now.store, "rule = 'jammer_shielding'")] == [a["id"]]
        assert alarms(paper_now.store, "rule = 'jammer_shielding'")[0]["state"] == "firing"





def test_hysteresis_does_not_flap(stack: Stack, paper_now: RulesProcess) -> None:
    with Heartbeat(stack, interval_s=0.2) as hb:
        hb.wait_rounds(1)
        paper_now.start()
        for i in range(10):  # between the fire level (70 °C) and the clear level (65 °C), back and forth
            hb.over[JAM] = {"temperature_c": 75.0 if i % 2 == 0 else 66.0}
            hb.wait_rounds(1)
        hb.over[JAM] = {"temperature_c": 60.0}
        wait_alarm(paper_now, "rule = 'jammer_hot'", state="resolved")
    states = [t["state"] for t in transitions(paper_now.store) if t["rule"] == "jammer_hot"]
    assert states == ["firing", "resolved"]
    wait_for(lambda: len(influx_alarms(stack, "\"rule\" = 'jammer_hot'")) == 2, 10, "two jammer_hot points")


def test_a_rise_after_an_acknowledgement_is_published_as_firing(stack: Stack, paper_now: RulesProcess) -> None:
    live = watch(stack, "exam/v1/_alarm/+/jammer_hot/#")
    with Heartbeat(stack) as hb:
        hb.wait_rounds(1)
        paper_now.start()
        hb.over[JAM] = {"temperature_c": 75.0}  # minor
        a = wait_alarm(paper_now, "rule = 'jammer_hot'")
        out = paper_now.cli("ack", str(a["id"]), "--by", "王老师")
        assert out.returncode == 0, out.stderr
        hb.over[JAM] = {"temperature_c": 90.0}  # major: news, the acknowledgement must be renewed
        wait_for(lambda: any(p["seq"] == 3 for _, p in live["msgs"]), 20, "the rise on MQTT")
    steps = {p["seq"]: (p["state"], p["severity"], p["by"]) for _, p in live["msgs"]}
    assert steps[1] == ("firing", "minor", "rules")
    assert steps[2] == ("acknowledged", "minor", "王老师")
    assert steps[3] == ("firing", "major", "rules")
