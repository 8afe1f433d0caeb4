"""Ingest's self-metrics: plain counters on the hot path, exposed to Prometheus and to InfluxDB.

Counters are plain integers, each written by one thread only, and read by the Prometheus
collector at scrape time: cheaper per message than a locked client-library counter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from examwatch.rejects import Reason


@dataclass
class Stats:
    received: int = 0
    service: int = 0  # messages on service topics (alarms, readiness, control): not telemetry, not stored
    written: int = 0  # points InfluxDB took (directly or from the spool)
    dropped: int = 0  # points InfluxDB dropped in a partial write (field type conflict)
    spooled: int = 0  # batches put in the spool
    dead: int = 0  # batches InfluxDB refused as malformed
    write_errors: int = 0
    write_seconds: float = 0.0
    writes: int = 0
    spool_depth: int = 0  # batches waiting in the spool now
    rejected: dict[Reason, int] = field(default_factory=lambda: dict.fromkeys(Reason, 0))

    def stats_line(self, worker: str) -> bytes:
        """This worker's counters as an ``ingest_stats`` point (written through the same pipeline)."""
        fields = [
            f"received={self.received}i",
            f"service={self.service}i",
            f"written={self.written}i",
            f"dropped={self.dropped}i",
            f"spooled={self.spooled}i",
            f"dead={self.dead}i",
            f"write_errors={self.write_errors}i",
            f"spool_depth={self.spool_depth}i",
            f"rejected={sum(self.rejected.values())}i",
            f"write_ms_avg={1000 * self.write_seconds / max(self.writes, 1):.3f}",
        ]
        fields += [f"rejected_{r.value}={n}i" for r, n in self.rejected.items()]
        return f"ingest_stats,worker={worker} {','.join(fields)} {time.time_ns()}".encode()


class StatsCollector(Collector):
    def __init__(self, stats: Stats, worker: str) -> None:
        self.stats = stats
        self.worker = worker

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s, w = self.stats, [self.worker]
        for name, value, doc in (
            ("received", s.received, "MQTT messages received"),
            ("service_messages", s.service, "messages on service topics (alarms, readiness, control), not stored"),
            ("written", s.written, "points written to InfluxDB"),
            ("dropped", s.dropped, "points InfluxDB dropped (field type conflict)"),
            ("spooled_batches", s.spooled, "batches kept in the spool while InfluxDB was unavailable"),
            ("dead_batches", s.dead, "batches InfluxDB refused as malformed, kept in spool/dead"),
            ("write_errors", s.write_errors, "failed InfluxDB writes"),
            ("batch_write_seconds", s.write_seconds, "time spent in InfluxDB writes"),
            ("batch_writes", s.writes, "InfluxDB writes"),
        ):
            c = CounterMetricFamily(f"examwatch_ingest_{name}", doc, labels=["worker"])
            c.add_metric(w, value)
            yield c
        rej = CounterMetricFamily(
            "examwatch_ingest_rejected", "messages rejected, by reason", labels=["worker", "reason"]
        )
        for reason, n in s.rejected.items():
            rej.add_metric([self.worker, reason.value], n)
        yield rej
        g = GaugeMetricFamily("examwatch_ingest_spool_depth", "batches waiting in the spool", labels=["worker"])
        g.add_metric(w, s.spool_depth)
        yield g
