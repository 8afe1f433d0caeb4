"""An alarm the rules engine raised, acknowledged by an SMS reply through real Kannel, and cleared by the engine.

The storage room's power sensor reports mains lost; the engine (``examwatch rules`` on the API's
store) raises ``power_mains_lost``; the chief replies ``1 <code>``; the engine, still seeing the
loss, keeps the acknowledgement; mains returns and the engine resolves the alarm.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from examwatch.store import lifecycle
from harness.api_stack import ApiStack
from harness.notify_kit import PHONES, ServiceProcess
from harness.servers import Kannel, wait_for
from harness.stack import device_topic, publish_all, telemetry

DEVICE = "S01-VAULT-PWR1"


@pytest.fixture(scope="module")
def engine(api: ApiStack) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(api.root / "logs", api.config, "rules")
    proc.start(timeout=30)
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def phone(api: ApiStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    k = Kannel(tmp_path_factory.mktemp("kannel"), api_url=api.url, secret=api.secret)
    k.start()
    yield k
    k.stop()


def power(api: ApiStack, **fields: object) -> None:
    gw = api.gateway("S01")
    publish_all(gw, [(device_topic(api, DEVICE), telemetry(DEVICE, "power", time.time_ns() // 1_000_000, **fields))])


def mains_alarm(api: ApiStack) -> lifecycle.AlarmView | None:
    return next((a for a in lifecycle.list_alarms(api.store, active_only=False)
                 if a.rule == "power_mains_lost" and a.subject == DEVICE), None)


def test_reply_acknowledges_what_the_engine_raised(api: ApiStack, engine: ServiceProcess, phone: Kannel) -> None:
    power(api, mains_v=0.0, frequency_hz=0.0, on_ups=True)
    wait_for(lambda: (a := mains_alarm(api)) is not None and a.state == "firing", 20, "the engine to raise mains lost")
    alarm = mains_alarm(api)
    assert alarm is not None
    api.told(alarm.id, "W3", "chief-S01", PHONES["chief-S01"])

    before = len(phone.smsc.messages())
    phone.reply(PHONES["chief-S01"], "1 W3")
    wait_for(lambda: len(phone.smsc.messages()) > before, 15, "the confirmation SMS")
    assert phone.smsc.messages()[before][1:] == (PHONES["chief-S01"], "已确认告警W3（S01 市电中断），提醒停止。谢谢")
    acked = mains_alarm(api)
    assert acked is not None
    assert acked.state == "acknowledged"

    power(api, mains_v=0.0, frequency_hz=0.0, on_ups=True)  # still lost: the engine keeps the acknowledgement
    power(api, mains_v=221.0, frequency_hz=50.0, on_ups=False)
    wait_for(lambda: (a := mains_alarm(api)) is not None and a.state == "resolved", 20, "the engine to clear it")
    steps = [(t.state, t.by) for t in lifecycle.history(api.store, alarm.id)]
    assert steps == [("firing", "rules"), ("acknowledged", "chief-S01"), ("resolved", "rules")], steps
