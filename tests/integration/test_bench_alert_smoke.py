"""The alarm-latency benchmark runs end to end with every kind of background (nothing here is timed)."""

from __future__ import annotations

import json

from bench.alert_latency import Options, run
from bench.alert_report import markdown


def test_alert_latency_runs_with_live_telemetry_and_a_burst() -> None:
    opts = Options(injections=3, warmup_s=1.0, telemetry_rate=300.0, burst=50, burst_hold_s=0.5, command="smoke")
    doc = run(opts)
    json.dumps(doc)  # the document is what bench/results gets
    probes = doc["probes"]
    assert (probes["asked"], probes["injections"], probes["missed"], probes["stopped_early"]) == (3, 3, 0, None)
    assert doc["legs"]["total"]["n"] == doc["legs"]["floor"]["n"] == 3
    bg = doc["background"]
    assert not bg["simulator"]
    assert bg["published"] > 0
    assert bg["stored_in_window"] > 0  # counted in InfluxDB, not assumed
    bursts = doc["bursts"]
    assert bursts["cycles"] >= 1
    assert bursts["alarms_published"] == bursts["recoveries_published"] == 50 * bursts["cycles"]
    assert bursts["alarms_fired"] > 0  # the burst's reports were judged by the rules engine
    assert {"ingest", "rules", "notify", "publisher-0"} <= set(doc["peak_rss_kb"])
    assert doc["cpu_us_per_telemetry_msg"]["ingest"] > 0
    assert doc["target"]["p99_ms"] is None  # neither of the two kinds of run
    text = markdown(doc)
    assert "publish → SMS accepted by Kannel" in text
    assert "| bursts | 50 `jammer_fault` alarms within 1 s" in text
