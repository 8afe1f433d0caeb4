"""The benchmark rig: real influxd, mosquitto (config, passwords and ACL from examwatch.broker) and
``examwatch ingest`` processes, and the trials run against them.

A trial publishes a known number of messages and times first publish → last message counted
(bare relay) or → last point queryable in InfluxDB (ingest). The CPU seconds of every process
taking part are read from /proc before and after, so each trial also says where the CPU went.
Publishers and the counting subscriber are processes of their own (bench.load, bench.child).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat
from bench.child import Child
from bench.load import (
    SENTINEL_KIND,
    Broker,
    CountResult,
    CountSpec,
    PublishResult,
    PublishSpec,
    start_counter,
    start_publisher,
)
from examwatch.kinds import KINDS
from harness.servers import Influx as InfluxServer
from harness.servers import wait_for
from harness.stack import Stack

KINDS_RE = f"/^({'|'.join(KINDS)})$/"  # every registered device kind
#: Publishing starts this long before now, so device clocks stay well inside ingest's 24 h bound.
_START_OFFSET_MS = 12 * 3600 * 1000


@dataclass
class Trial:
    """One timed run: ``arrived`` of ``messages`` counted at the end, in ``seconds``."""

    name: str              # "relay" (counting subscriber) or "ingest" (points in InfluxDB)
    qos: int
    workers: int           # ingest processes on the shared subscription (0 for relay)
    messages: int
    arrived: int
    seconds: float
    cpu_s: dict[str, float] = field(default_factory=dict)   # CPU seconds per process during the trial
    ingest_hwm_kb: int = 0                                    # peak RSS of the ingest worker(s) so far

    @property
    def rate(self) -> float:
        return self.arrived / self.seconds if self.seconds > 0 else 0.0

    @property
    def cores(self) -> float:
        """CPU seconds of all measured processes per wall second: how much of the machine the trial got."""
        return sum(self.cpu_s.values()) / self.seconds if self.seconds > 0 else 0.0

    def cpu_us_per_msg(self, prefix: str) -> float:
        """CPU µs per message of the processes whose name starts with ``prefix``, summed."""
        total = sum(v for k, v in self.cpu_s.items() if k.startswith(prefix))
        return 1e6 * total / max(self.messages, 1)


@dataclass
class Soak:
    """A paced run: ingest's RSS sampled every few seconds."""

    rate: float
    seconds: float
    sent: int = 0
    arrived: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)   # (seconds since start, RSS KiB)
    ingest_cpu_s: float = 0.0

    def slope_kb_per_min(self, skip_fraction: float = 0.2) -> float:
        """Least-squares RSS slope after the first ``skip_fraction`` of the run (warm-up), KiB/min."""
        pts = [(t, kb) for t, kb in self.samples if t >= self.seconds * skip_fraction]
        if len(pts) < 2:
            return 0.0
        mt = sum(t for t, _ in pts) / len(pts)
        mk = sum(kb for _, kb in pts) / len(pts)
        var = sum((t - mt) ** 2 for t, _ in pts)
        return 60 * sum((t - mt) * (kb - mk) for t, kb in pts) / var if var else 0.0


def settle(count: Callable[[], int], expected: int, idle_s: float, interval: float) -> tuple[int, float]:
    """Poll ``count`` until it reaches ``expected`` or stops growing for ``idle_s``; (count, when)."""
    seen, seen_at = -1, time.monotonic()
    while True:
        asked = time.monotonic()
        n = count()
        if n >= expected:
            return n, asked
        if n != seen:
            seen, seen_at = n, asked
        elif asked - seen_at > idle_s:
            return n, seen_at
        time.sleep(interval)


class Rig:
    """Servers and ingest for a whole benchmark run, under ``root``; ``close()`` stops everything."""

    def __init__(self, root: Path, inventory: Path, publishers: int, window: int,
                 ingest_overrides: dict[str, Any] | None = None) -> None:
        self.publishers = publishers
        self.window = window
        self.influx_server = InfluxServer(root / "influxd")
        self.influx_server.start()
        # Production batching and stats cadence, not the quicker test values Stack defaults to.
        overrides = {"batch_latency_ms": 200, "stats_interval_s": 10.0, **(ingest_overrides or {})}
        self.stack = Stack(root / "stack", self.influx_server, "bench", ingest_overrides=overrides,
                           inventory_file=inventory)
        self.stack.mosquitto.start()
        # The bare relay gets a broker of its own, generated the same way: ingest's persistent
        # session on the shared subscription would otherwise take (or queue) a share of it.
        self.relay_stack = Stack(root / "relay", self.influx_server, "bench_relay", inventory_file=inventory)
        self.relay_stack.mosquitto.start()
        self.brokers = {name: Broker("127.0.0.1", st.mqtt_port, st.secret)
                        for name, st in (("ingest", self.stack), ("relay", self.relay_stack))}
        self.sites = tuple(s.id for s in self.stack.inventory.sites)
        self._cursor_ms = time.time_ns() // 1_000_000 - _START_OFFSET_MS
        self.stack.start_ingest("1")

    def close(self) -> None:
        self.stack.close()
        self.relay_stack.close()
        self.influx_server.stop()

    @property
    def ingest_pids(self) -> dict[str, int]:
        return {p.name: p.proc.pid for p in self.stack.ingests if p.proc is not None}

    def add_worker(self, name: str) -> None:
        self.stack.start_ingest(name)

    def _pids(self, name: str) -> dict[str, int]:
        """The server processes a trial of ``name`` exercises."""
        if name == "relay":
            servers: dict[str, Any] = {"mosquitto": self.relay_stack.mosquitto}
            pids = {}
        else:
            servers = {"mosquitto": self.stack.mosquitto, "influxd": self.influx_server}
            pids = dict(self.ingest_pids)
        for key, server in servers.items():
            assert server.proc is not None
            pids[key] = server.proc.pid
        return pids

    def _window(self, span_ms: int) -> int:
        base = self._cursor_ms
        self._cursor_ms += span_ms + 1000
        return base

    def _specs(self, broker: str, qos: int, count: int, base: int, *, rate: float = 0.0,
               duration_s: float = 0.0) -> list[PublishSpec]:
        n = self.publishers
        return [
            PublishSpec(
                self.brokers[broker], self.stack.inventory_path, self.sites[i::n], qos, base, n, i,
                count=count // n + (i < count % n), window=self.window, rate=rate / n, duration_s=duration_s,
            )
            for i in range(n)
        ]

    def points(self, base: int, span_ms: int, measurements: str = KINDS_RE) -> int:
        """Device points with timestamps in [base, base + span_ms) ms, over the five kinds."""
        q = (f'SELECT count("skew_ms") FROM {measurements} '
             f"WHERE time >= {base * 1_000_000} AND time < {(base + span_ms) * 1_000_000}")
        return sum(int(r["count"]) for r in self.stack.influx.rows(q))

    def _wait_points(self, base: int, expected: int, sentinels: int, idle_s: float) -> tuple[int, float]:
        """Wait until ``expected`` points are queryable (or none arrive for ``idle_s``); (count, when).

        Counting every point costs InfluxDB about 70 ms of CPU per query with 2,793 series, which
        would distort what is measured; so the cheap count of the sentinel kind (21 series) is
        polled until each publisher's last message is in, and only then everything is counted.
        """
        span = expected + self.publishers
        when = settle(lambda: self.points(base, span, SENTINEL_KIND), sentinels, idle_s, 0.05)[1]
        n = self.points(base, span)
        if n >= expected:
            return n, when
        return settle(lambda: self.points(base, span), expected, idle_s, 0.25)


    @staticmethod
    def _start_publishers(children: contextlib.ExitStack, specs: list[PublishSpec]) -> list[Child]:
        """One publisher process per spec, closed with ``children``; returns when all are ready."""
        pubs = [children.enter_context(start_publisher(spec, f"publisher {i}")) for i, spec in enumerate(specs)]
        for p in pubs:
            p.wait_ready()
        return pubs

    @staticmethod
    def _results(pubs: list[Child]) -> list[PublishResult]:
        """What each publisher sent, once it has finished."""
        return [PublishResult(**p.result()) for p in pubs]

    def trial(self, name: str, qos: int, messages: int, idle_s: float = 15.0) -> Trial:
        """Publish ``messages`` at ``qos``; count them at a bare subscriber (``relay``) or in InfluxDB."""
        base = self._window(messages)
        pids = self._pids(name)
        with contextlib.ExitStack() as children:
            counter = None
            if name == "relay":
                counter = children.enter_context(start_counter(CountSpec(self.brokers["relay"], messages, 3.0)))
                counter.wait_ready()
                pids["counter"] = counter.pid
            pubs = self._start_publishers(children, self._specs(name, qos, messages, base))
            pids |= {f"publisher-{i}": p.pid for i, p in enumerate(pubs)}
            cpu0 = {k: procstat.cpu_seconds(pid) for k, pid in pids.items()}
            for p in pubs:
                p.go()
            results = self._results(pubs)
            if counter is not None:
                got = CountResult(**counter.result())
                arrived, end = got.received, got.last
            else:
                arrived, end = self._wait_points(base, messages, sum(r.sentinels for r in results), idle_s)
            cpu = {k: procstat.cpu_seconds(pid) - cpu0[k] for k, pid in pids.items()}
            hwm = sum(procstat.memory_kb(pid, "VmHWM") for pid in self.ingest_pids.values())
        start = min(r.first_publish for r in results)
        workers = len(self.ingest_pids) if name == "ingest" else 0
        return Trial(name, qos, workers, messages, arrived, end - start, cpu, hwm)

    def soak(self, rate: float, seconds: float, sample_s: float = 5.0) -> Soak:
        """Publish at ``rate`` msgs/s (QoS 1) for ``seconds``, sampling ingest worker 1's RSS."""
        span = int(rate * seconds * 1.2) + 1000
        base = self._window(span)
        with contextlib.ExitStack() as children:
            pubs = self._start_publishers(children, self._specs("ingest", 1, 0, base, rate=rate, duration_s=seconds))
            pid = self.ingest_pids["ingest-1"]
            result = Soak(rate, seconds)
            cpu0 = procstat.cpu_seconds(pid)
            t0 = time.monotonic()
            for p in pubs:
                p.go()
            while (t := time.monotonic() - t0) < seconds:
                result.samples.append((t, procstat.memory_kb(pid, "VmRSS")))
                time.sleep(min(sample_s, max(seconds - t, 0.0)))
            results = self._results(pubs)
            result.samples.append((time.monotonic() - t0, procstat.memory_kb(pid, "VmRSS")))
            result.sent = sum(r.sent for r in results)
            with contextlib.suppress(TimeoutError):  # a shortfall is reported, not raised
                wait_for(lambda: self.points(base, span) >= result.sent, 120, "soak points", interval=0.5)
            result.arrived = self.points(base, span)
            result.ingest_cpu_s = procstat.cpu_seconds(pid) - cpu0
        return result

