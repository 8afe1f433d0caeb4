"""What a simulation run did: messages, drops, lag behind the cadence, and memory."""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, float("inf"))


def rss_mb() -> float:
    """This process's resident memory now, MB (from /proc; 0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Stats:
    devices: int = 0
    nominal_msg_s: float = 0.0  # telemetry the cadence asks for, per wall second
    sent: int = 0               # messages handed to the connections (telemetry, events, status)
    dropped: int = 0            # refused because a connection's queue was full
    events: int = 0
    reports: int = 0            # telemetry reports due and handled
    max_lag_s: float = 0.0
    max_lag_at: float = 0.0     # the simulated moment of the worst lag
    lag_counts: list[int] = field(default_factory=lambda: [0] * len(_LAG_BUCKETS))
    started: float = 0.0
    finished: float = 0.0
    peak_rss_mb: float = 0.0
    rss_start_mb: float = 0.0   # once connected, before the first report

    def start(self, devices: int, interval_wall_s: float) -> None:
        self.devices = devices
        self.nominal_msg_s = devices / interval_wall_s
        self.started = time.time()
        self.rss_start_mb = round(rss_mb(), 1)

    def lag(self, seconds: float, at: float = 0.0) -> None:
        """Record one report sent ``seconds`` after it was due (at simulated time ``at``)."""
        self.reports += 1
        if seconds > self.max_lag_s:
            self.max_lag_s, self.max_lag_at = seconds, at
        for i, bound in enumerate(_LAG_BUCKETS):
            if seconds <= bound:
                self.lag_counts[i] += 1
                return

    def lag_quantile(self, q: float) -> float:
        """An upper bound of the ``q`` quantile of lag (the bucket it falls in)."""
        target = q * max(self.reports, 1)
        seen = 0
        for bound, n in zip(_LAG_BUCKETS, self.lag_counts, strict=True):
            seen += n
            if seen >= target:
                return bound
        return float("inf")

    def finish(self) -> None:
        self.finished = time.time()
        self.peak_rss_mb = peak_rss_mb()

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.time()) - self.started if self.started else 0.0

    @property
    def report_rate(self) -> float:
        return self.reports / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        del out["lag_counts"]
        out.update(elapsed_s=round(self.elapsed_s, 2), report_rate=round(self.report_rate, 1),
                   msg_rate=round(self.sent / self.elapsed_s, 1) if self.elapsed_s else 0.0,
                   lag_p99_le_s=self.lag_quantile(0.99), rss_mb=round(rss_mb(), 1),
                   peak_rss_mb=round(self.peak_rss_mb or peak_rss_mb(), 1))
        return out
