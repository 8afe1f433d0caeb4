"""The benchmark's derived figures: RSS slope after warm-up, CPU per message, ratios."""

from __future__ import annotations

from bench.ingest import Options, Report
from bench.rig import Soak, Trial


def test_soak_slope_ignores_warm_up_and_is_per_minute() -> None:
    soak = Soak(rate=100, seconds=600)
    # 100 MiB while warming up, then +10 KiB per 5 s sample: 120 KiB/min.
    soak.samples = [(t, 100_000 if t < 120 else 50_000 + 2 * int(t)) for t in range(0, 601, 5)]
    assert abs(soak.slope_kb_per_min() - 120.0) < 1e-6
    flat = Soak(rate=100, seconds=600, samples=[(t, 60_000) for t in range(0, 601, 5)])
    assert flat.slope_kb_per_min() == 0.0


def test_ratios_pair_relay_and_ingest_trials_of_the_same_qos() -> None:
    relay = Trial("relay", 1, 0, 1000, 1000, 1.0, {"counter": 0.1, "mosquitto": 0.03, "publisher-0": 0.1})
    ingest = Trial("ingest", 1, 1, 1000, 1000, 1.25, {"ingest-1": 0.11, "influxd": 0.04, "mosquitto": 0.03,
                                                      "publisher-0": 0.1})
    two = Trial("ingest", 1, 2, 1000, 1000, 2.0, {"ingest-1": 0.06, "ingest-2": 0.06})
    report = Report("now", Options(messages=1000), [relay, ingest, two])
    assert report.ratios(1) == [0.8]
    assert report.ratios(0) == []
    assert abs(report.cpu_ratios(1)[0] - 0.23 / 0.28) < 1e-9
    assert abs(two.cpu_us_per_msg("ingest") - 120.0) < 1e-9
    assert abs(ingest.cores - 0.28 / 1.25) < 1e-9
    assert report.lossless()
    report.trials.append(Trial("ingest", 1, 1, 1000, 999, 1.0))
    assert not report.lossless()
