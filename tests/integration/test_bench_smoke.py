"""The benchmark's code runs end to end on a tiny load (nothing here is timed or compared)."""

from __future__ import annotations

from pathlib import Path

from bench.ingest import Options, render, run


def test_bench_runs_every_trial_and_counts_every_message(tmp_path: Path) -> None:
    report = run(Options(messages=500, soak_s=2.0, soak_rate=200.0), tmp_path)
    kinds = [(t.name, t.qos, t.workers) for t in report.trials]
    assert kinds == [("relay", 0, 0), ("ingest", 0, 1), ("relay", 1, 0), ("ingest", 1, 1), ("ingest", 1, 2)]
    for t in report.trials:
        assert t.arrived == t.messages == 500, t
        assert t.rate > 0
        assert {"mosquitto", "publisher-0"} <= set(t.cpu_s)
    ingest = report.find("ingest", 1, 1)[0]
    assert {"ingest-1", "influxd"} <= set(ingest.cpu_s)
    # /proc counts CPU in 10 ms ticks, and 500 messages cost lean ingest less than one: the trial's
    # processes together must still show some, and ingest's figure must be a number, not a failure
    assert sum(ingest.cpu_s.values()) > 0, ingest
    assert ingest.cpu_us_per_msg("ingest") >= 0
    assert ingest.ingest_hwm_kb > 10_000
    assert {"ingest-1", "ingest-2"} <= set(report.find("ingest", 1, 2)[0].cpu_s)
    assert report.soak is not None
    assert report.soak.sent > 0
    assert report.soak.arrived == report.soak.sent
    assert len(report.soak.samples) >= 2
    assert all(r > 0 for r in report.cpu_ratios(1))
    assert report.lossless()
    text = render(report)
    assert "ingest / bare relay, QoS 1" in text
    assert "nothing lost at QoS 1" in text
