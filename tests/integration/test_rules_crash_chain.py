"""Exactly once from the rules engine to the phone: the engine SIGKILLed during a burst of alarms while
the notifier runs, and the broker restarted under the same burst. Counted at fakesmsc.

Each of the district's 27 jammers overheats once (one alarm each, one alert SMS each to its site's
chief examiner; fewer than a flood, so the notifier texts each one). Whatever the crash hits
(a message judged and not committed, a transition committed and not published, published and
not marked sent), every alarm is raised once and texted once.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.notify_kit import PHONES, Processes, notifications
from harness.rules_kit import RulesProcess, alarms, timetable, transitions
from harness.servers import Influx, Kannel, wait_for
from harness.stack import Stack, device_topic, publish_all, telemetry

RULES: dict[str, list[dict[str, Any]]] = {"jammer": [{
    "name": "jammer_hot", "type": "threshold", "field": "temperature_c", "severity": "major",
    "levels": [{"severity": "major", "above": 85}], "clear": {"below": 65}}]}


@pytest.fixture
def district(tmp_path: Path, influx_server: Influx) -> Iterator[Stack]:
    s = Stack(tmp_path, influx_server, "t_crash_chain", rooms=8)
    s.mosquitto.start()
    yield s
    s.close()


def _jammers(stack: Stack) -> list[str]:
    return sorted(d for d, ref in stack.inventory.devices.items() if ref.kind == "jammer")


def _burst(stack: Stack, jammers: list[str], gap_s: float) -> threading.Thread:
    """Each jammer reports 95 °C once, ``gap_s`` apart, through its site's gateway."""
    gateways = {s.id: stack.gateway(s.id) for s in stack.inventory.sites}

    def run() -> None:
        for dev in jammers:
            ref = stack.inventory.devices[dev]
            publish_all(gateways[ref.site], [(device_topic(stack, dev), telemetry(dev, "jammer", temperature_c=95.0))])
            time.sleep(gap_s)  # the pace of the burst, not a wait for anything

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _check_once(stack: Stack, kannel: Kannel, proc: RulesProcess, jammers: list[str], sent_before: int) -> None:
    wait_for(lambda: len(alarms(proc.store, "rule = 'jammer_hot'")) >= len(jammers), 60, "every jammer's alarm")
    wait_for(lambda: all(t["sent"] for t in transitions(proc.store)), 60, "the engine's outbox to drain")
    wait_for(lambda: len(kannel.smsc.messages()) - sent_before >= len(jammers), 60, "an SMS per alarm at fakesmsc")
    # the notifier has nothing left to send: any second SMS would be at fakesmsc by now
    wait_for(lambda: all(n["status"] != "queued" for n in notifications(stack)), 60, "the notifier's outbox to drain")
    got = alarms(proc.store, "rule = 'jammer_hot'")
    assert sorted(a["subject"] for a in got) == jammers, "an alarm lost or raised twice"
    assert [t["state"] for t in transitions(proc.store)] == ["firing"] * len(jammers)
    texts = kannel.smsc.messages()[sent_before:]
    per_phone = Counter(to for _f, to, _t in texts)
    assert per_phone == {PHONES[f"chief-{s.id}"]: 9 for s in stack.inventory.sites}, per_phone
    assert len(set(texts)) == len(texts) == len(jammers), "an SMS sent twice"


def test_rules_engine_sigkilled_during_a_burst_loses_and_repeats_nothing(district: Stack, kannel: Kannel) -> None:
    stack = district
    jammers = _jammers(stack)
    assert len(jammers) == 27
    procs = Processes(stack)
    sent_before = len(kannel.smsc.messages())
    proc = RulesProcess(stack, timetable(time.time(), start_in_s=86_400), RULES)
    try:
        procs.notifier(kannel)
        proc.start()
        burst = _burst(stack, jammers, gap_s=0.03)
        wait_for(lambda: len(alarms(proc.store)) >= 9, 30, "a third of the burst judged", interval=0.002)
        proc.stop(signal.SIGKILL)
        killed_with = len(alarms(proc.store))
        proc.start()
        burst.join(30)
        assert killed_with < len(jammers), "the kill came after the burst: it tested nothing"
        _check_once(stack, kannel, proc, jammers, sent_before)
    finally:
        proc.stop()
        procs.kill_all()


def test_broker_restarted_during_a_burst_loses_no_transition(district: Stack, kannel: Kannel) -> None:
    stack = district
    jammers = _jammers(stack)
    procs = Processes(stack)
    sent_before = len(kannel.smsc.messages())
    proc = RulesProcess(stack, timetable(time.time(), start_in_s=86_400), RULES)
    try:
        procs.notifier(kannel)
        proc.start()
        gateways = {s.id: stack.gateway(s.id) for s in stack.inventory.sites}
        first, rest = jammers[:9], jammers[9:]
        for dev in first:
            ref = stack.inventory.devices[dev]
            publish_all(gateways[ref.site], [(device_topic(stack, dev), telemetry(dev, "jammer", temperature_c=95.0))])
        wait_for(lambda: len(alarms(proc.store)) >= 1, 30, "the burst's first alarm")
        stack.mosquitto.stop()  # SIGTERM: the broker saves its sessions (and what they queue) on the way down
        stack.mosquitto.start()
        for dev in rest:  # the gateways reconnect by themselves; the burst goes on
            ref = stack.inventory.devices[dev]
            wait_for(lambda g=gateways[ref.site]: g.is_connected(), 30, f"gateway {ref.site} back")
            publish_all(gateways[ref.site], [(device_topic(stack, dev), telemetry(dev, "jammer", temperature_c=95.0))])
        _check_once(stack, kannel, proc, jammers, sent_before)
    finally:
        proc.stop()
        procs.kill_all()
