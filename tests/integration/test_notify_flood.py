"""Urgent first in a flood: 650 jammer alarms at once become one summary per recipient, and a mains
loss at another site still reaches its chief within 10 s (real mosquitto, notifier, Kannel, fakesmsc)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from harness.notify_kit import PHONES, Processes, notifications, publish, sms_to, transition
from harness.servers import Kannel, wait_for
from harness.stack import Stack

FLOOD = 650


@pytest.fixture
def procs(stack: Stack) -> Iterator[Processes]:
    p = Processes(stack)
    yield p
    p.kill_all()


def test_650_jammer_alarms_and_a_mains_loss_elsewhere(stack: Stack, kannel: Kannel, procs: Processes) -> None:
    since = len(kannel.smsc.messages())
    # The shipped per-phone limit (10 a minute) and flood threshold (50 a minute); summaries after 2 s.
    procs.notifier(kannel, rate_per_phone=10, rate_window_s=60.0, summary_delay_s=2.0)
    jammers = [transition(5000 + i, 1, "firing", site=("S01", "S02")[i % 2], rule="jammer_shielding",
                          subject=f"S0{i % 2 + 1}-R{i // 2:03d}-JAM1") for i in range(FLOOD)]
    rules = stack.client("svc-rules")
    publish(rules, jammers)
    sent_at = time.monotonic()
    publish(rules, [transition(9000, 1, "firing", site="S03")])
    chief = PHONES["chief-S03"]
    wait_for(lambda: any("市电中断" in t for t in sms_to(kannel, chief, since)), 10,
             "the mains-loss SMS behind 650 jammer alarms", interval=0.005)
    took = time.monotonic() - sent_at
    print(f"mains-loss SMS at fakesmsc {took * 1000:.0f} ms after its transition was published")
    assert took < 10
    # Each jammer chief gets one summary (after summary_delay_s), never 325 texts.
    for site in ("S01", "S02"):
        wait_for(lambda site=site: any("汇总" in t for t in sms_to(kannel, PHONES[f"chief-{site}"], since)), 20,  # type: ignore[misc]
                 f"the flood's summary to the {site} chief")
    wait_for(lambda: not [r for r in notifications(stack) if r["status"] == "queued"], 20, "the outbox drained")
    texts = Counter((to, t) for _f, to, t in kannel.smsc.messages()[since:])
    summaries = Counter(to for (to, t) in texts if "汇总" in t)
    assert summaries == Counter({PHONES["chief-S01"]: 1, PHONES["chief-S02"]: 1})
    singles = [t for (_to, t) in texts if "屏蔽信号不足" in t and "汇总" not in t]
    assert len(singles) < 50, f"{len(singles)} jammer alarms texted one by one"  # only those before it was seen
    [summary] = [t for (to, t) in texts if to == PHONES["chief-S01"] and "汇总" in t]
    assert summary.startswith(f"【考务告警·汇总】屏蔽信号不足 {FLOOD}起 S01、S02 ")
    assert set(texts.values()) == {1}
