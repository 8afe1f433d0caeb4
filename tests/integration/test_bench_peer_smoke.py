"""bench/peer's code runs end to end on a tiny load: every contender, both QoS, every message counted.

Nothing is timed or compared here (the figures are BENCHMARKS.md's); this proves the bench works,
Node-RED's flow included, so a fresh clone can reproduce the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.peer.__main__ import DISTRICT, render, run, targets
from bench.peer.rig import CONTENDERS


@pytest.mark.slow
def test_peer_bench_runs_every_contender_and_counts_every_message(tmp_path: Path) -> None:
    report = run(1, 400, DISTRICT, 1, 1000, tmp_path)
    assert [(t.contender, t.qos) for t in report.trials] == [(c, q) for q in (0, 1) for c in CONTENDERS]
    for t in report.trials:
        assert t.arrived == t.messages == 400, t
        assert t.cpu_s[t.contender] > 0, t
        assert t.peak_rss_kb > 10_000, t
        assert {"mosquitto", "publisher-0"} <= set(t.cpu_s)
    text = render(report)
    assert "| examwatch | 1 |" in text
    assert "| nodered | 1 |" in text
    assert f"inventory {DISTRICT.name} ({report.devices} devices)" in text
    assert [what for _, what in targets(report)][-1].startswith("QoS 1: nothing lost (0 lost)")
