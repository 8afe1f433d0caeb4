"""No false alarm at any timetable edge, through the real chain on a drill clock, counting SMS at the SMSC.

Mosquitto, the rules engine (the shipped rules) and the notifier as processes, Kannel with
fakesmsc, and the simulator's devices, all on one drill clock at 40x: a paper with a listening
window, from T−17 min to 2 min after its end (about a minute of wall time). Every device is
healthy but one jammer that never switches on: the only alarms are that jammer's, one per
jammer window, the first caught within its grace after T−15, and the only SMS are about it, to
its site's chief examiner.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from examwatch.clock import DrillClock
from examwatch.timetable import Timetable
from harness.notify_kit import PHONES, Processes
from harness.rules_kit import SHIPPED_RULES, RulesProcess, alarms, timetable_yaml, transitions
from harness.servers import Influx, Kannel, wait_for
from harness.stack import Stack, _toml

SPEED = 40.0
INTERVAL = 30  # clock seconds between a device's reports
LEAD_S = 17 * 60  # the run starts 17 minutes before the paper: T−15 comes 2 minutes in
LENGTH_S = 20 * 60
LISTENING = (2 * 60, 6 * 60)  # jammers off from 2 to 6 minutes into the paper
TAIL_S = 2 * 60
OFF = "S02-R01-JAM1"
GRACE_S = INTERVAL + max(10.0, INTERVAL / 2) + 2.0  # the jammer rule's default: interval + margin + settle


@pytest.fixture
def drill_stack(request: pytest.FixtureRequest, tmp_path: Path, influx_server: Influx) -> Iterator[Stack]:
    s = Stack(tmp_path, influx_server, "t_edges_chain", rooms=8)
    s.mosquitto.start()
    yield s
    s.close()


def _timetable(start: float) -> Timetable:
    paper = datetime.fromtimestamp(start + LEAD_S, ZoneInfo("Asia/Shanghai"))
    return Timetable.model_validate({"exam": "edges", "papers": [{
        "id": "d2-english", "subject": "英语", "start": paper.isoformat(),
        "end": (paper + timedelta(seconds=LENGTH_S)).isoformat(),
        "jammer_off": [{"start": (paper + timedelta(seconds=LISTENING[0])).isoformat(),
                        "end": (paper + timedelta(seconds=LISTENING[1])).isoformat(), "reason": "听力"}]}]})


def test_every_timetable_edge_is_quiet_but_for_a_jammer_really_off(
    drill_stack: Stack, kannel: Kannel, tmp_path: Path
) -> None:
    stack = drill_stack
    procs = Processes(stack)
    sent_before = len(kannel.smsc.messages())
    try:
        procs.notifier(kannel)
        wall0 = time.time() + 8.0  # the drill clock starts once every process is up
        clock = DrillClock(wall0, wall0, SPEED)
        tt = _timetable(clock.start)
        section = {"start": _iso(clock.start), "wall_start": _iso(wall0), "speed": SPEED}
        rules = RulesProcess(stack, tt, rules_dir=SHIPPED_RULES, clock=section, restart_grace_s=10.0, tick_s=1.0)
        rules.start()
        sim_config = tmp_path / "sim.toml"
        (tmp_path / "tt.yaml").write_text(timetable_yaml(tt))
        sim_config.write_text(f'timetable = "{tmp_path / "tt.yaml"}"\n' + stack.config.read_text()
                              + _toml({"clock": section}))
        duration = LEAD_S + LENGTH_S + TAIL_S
        sim = subprocess.Popen(
            [sys.executable, "-m", "harness.clocked_sim", "--config", str(sim_config), "--interval", str(INTERVAL),
             "--duration", str(duration), "--jammer-off", OFF],
            stdout=(tmp_path / "sim.out").open("wb"), stderr=subprocess.STDOUT)
        try:
            first_sms: list[float] = []  # when (on the drill clock) the first SMS reached fakesmsc

            def day_over() -> bool:
                if not first_sms and len(kannel.smsc.messages()) > sent_before:
                    first_sms.append(clock.at_wall(time.time()))
                return sim.poll() is not None

            wait_for(day_over, duration / SPEED + 30, "the drill day to run", interval=0.05)
            assert sim.returncode == 0, (tmp_path / "sim.out").read_text()[-2000:]
        finally:
            if sim.poll() is None:
                sim.kill()
        start = tt.papers[0].start.timestamp()
        t15 = start - 900
        got = alarms(rules.store)
        assert {(a["rule"], a["subject"]) for a in got} == {("jammer_shielding", OFF)}, [
            (a["rule"], a["subject"], a["message"], round(a["opened_ns"] / 1e9 - start)) for a in got]
        first, again = got
        assert t15 < first["opened_ns"] / 1e9 <= t15 + GRACE_S + 5
        assert start + LISTENING[1] < again["opened_ns"] / 1e9 <= start + LISTENING[1] + GRACE_S + 5
        steps = [(t["alarm_id"], t["state"]) for t in transitions(rules.store)]
        assert steps == [(first["id"], "firing"), (first["id"], "resolved"),
                         (again["id"], "firing"), (again["id"], "resolved")]
        # every SMS went to S02's chief examiner, about that jammer: two alerts, and an all-clear for each
        wait_for(lambda: len(kannel.smsc.messages()) - sent_before >= 4, 20, "the all-clears at fakesmsc")
        texts = kannel.smsc.messages()[sent_before:]
        assert {to for _f, to, _t in texts} == {PHONES["chief-S02"]}, texts
        assert len(texts) == 4, texts
        assert first_sms
        assert first_sms[0] <= t15 + GRACE_S + 5, "the jammer's alert reached the SMSC too late"
    finally:
        procs.kill_all()
        if "rules" in locals():
            rules.stop()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()
