"""Three contenders on one Mosquitto and one InfluxDB, one trial at a time.

- ``bare``: a paho subscriber that only counts (``bench.load``'s counter): the broker's relay rate;
- ``nodered``: the Node-RED flow of ``flow.json``, writing to database ``peer_nodered``;
- ``examwatch``: ``examwatch ingest --worker 1``, production batching, writing to ``peer_examwatch``.

Only the contender of the trial runs: each is started before its trial and stopped after it,
and examwatch's persistent session is removed, so no contender takes or queues another's
messages. A trial publishes the bench mix (``bench.load``: every kind, round-robin over the
inventory's devices, one gateway connection per site) at QoS 0 or 1, and is timed from the first
publish to the last message counted (bare) or to the moment the last point is queryable. CPU
seconds come from ``/proc`` (``utime + stime``) before and after; peak RSS is the contender's
``VmHWM``; lost is messages minus what arrived (points in InfluxDB, or messages counted).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat
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
from bench.peer.nodered import NodeRed, install
from bench.rig import settle
from examwatch import credentials
from examwatch.kinds import KINDS
from examwatch.mqtt import connect_properties
from harness.servers import Influx as InfluxServer
from harness.servers import wait_for
from harness.stack import Stack

CONTENDERS = ("bare", "nodered", "examwatch")
#: A field every message of a kind carries, counted to count points (Node-RED keeps numbers only).
COUNTED = {"gate": "interval_s", "jammer": "vswr", "detector": "interval_s", "camera": "fps", "power": "mains_v"}
assert set(COUNTED) == set(KINDS), "bench/peer counts every device kind: name the new kind's counted field"
_START_OFFSET_MS = 12 * 3600 * 1000  # device clocks start 12 h back: inside ingest's 24 h bound


@dataclass
class Trial:
    """One contender, one QoS: ``arrived`` of ``messages`` in ``seconds``."""

    contender: str
    qos: int
    round: int
    messages: int
    arrived: int
    seconds: float
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per process during the trial
    peak_rss_kb: int = 0  # the contender's VmHWM

    @property
    def rate(self) -> float:
        return self.arrived / self.seconds if self.seconds > 0 else 0.0

    @property
    def lost(self) -> int:
        return self.messages - self.arrived

    @property
    def contender_cpu_us(self) -> float:
        """CPU µs per message of the contender's own process."""
        return 1e6 * self.cpu_s.get(self.contender, 0.0) / max(self.messages, 1)


class PeerRig:
    """influxd, mosquitto (config, passwords and ACL from examwatch.broker) and the contenders, under ``root``."""

    def __init__(self, root: Path, inventory: Path, publishers: int, window: int) -> None:
        install()
        self.root = root
        self.publishers = publishers
        self.window = window
        self.influx_server = InfluxServer(root / "influxd")
        self.influx_server.start()
        overrides = {"batch_latency_ms": 200, "stats_interval_s": 10.0}  # production values
        try:
            self.stack = Stack(root / "stack", self.influx_server, "peer_examwatch", ingest_overrides=overrides,
                               inventory_file=inventory)
            self.stack.mosquitto.start(timeout=300)  # a province's password file takes a while to read
        except BaseException:
            self.influx_server.stop()
            raise
        self.broker = Broker("127.0.0.1", self.stack.mqtt_port, self.stack.secret)
        self.sites = tuple(s.id for s in self.stack.inventory.sites)
        self._cursor_ms = time.time_ns() // 1_000_000 - _START_OFFSET_MS
        self.stack.influx.query('CREATE DATABASE "peer_nodered"')
        self.stack.influx.create_database()
        self._runs = 0

    def close(self) -> None:
        self.stack.close()
        self.influx_server.stop()

    def _window(self, span_ms: int) -> int:
        base = self._cursor_ms
        self._cursor_ms += span_ms + 1000
        return base

    def _specs(self, qos: int, count: int, base: int) -> list[PublishSpec]:
        n = self.publishers
        return [PublishSpec(self.broker, self.stack.inventory_path, self.sites[i::n], qos, base, n, i,
                            count=count // n + (i < count % n), window=self.window) for i in range(n)]

    def _points(self, database: str, base: int, span: int, kinds: tuple[str, ...] = tuple(COUNTED)) -> int:
        where = f"WHERE time >= {base * 1_000_000} AND time < {(base + span) * 1_000_000}"
        field_of = dict.fromkeys(COUNTED, "skew_ms") if database == "peer_examwatch" else COUNTED
        total = 0
        for kind in kinds:
            q = f'SELECT count("{field_of[kind]}") FROM "{database}".."{kind}" {where}'
            total += sum(int(r["count"]) for r in self.stack.influx.rows(q))
        return total

    def _wait_points(self, database: str, base: int, expected: int, sentinels: int, idle_s: float) -> tuple[int, float]:
        """Wait for the sentinel kind's points (cheap to count), then count all; (count, when complete)."""
        span = expected + self.publishers
        when = settle(lambda: self._points(database, base, span, (SENTINEL_KIND,)), sentinels, idle_s, 0.05)[1]
        n = self._points(database, base, span)
        if n >= expected:
            return n, when
        return settle(lambda: self._points(database, base, span), expected, idle_s, 0.25)

    def _start(self, contender: str, qos: int, messages: int) -> tuple[Any, dict[str, int]]:
        """Start ``contender``; (handle, {name: pid} of its processes)."""
        self._runs += 1
        if contender == "bare":
            counter = start_counter(CountSpec(self.broker, messages, 3.0))
            counter.wait_ready()
            return counter, {"bare": counter.pid}
        if contender == "nodered":
            user = credentials.service_user("ingest")
            red = NodeRed(self.root / f"nodered-{self._runs}", self.stack.mqtt_port, user,
                          credentials.password(self.stack.secret, user), self.influx_server.port, "peer_nodered")
            red.start(timeout=90)
            assert red.proc is not None
            return red, {"nodered": red.proc.pid}
        proc = self.stack.start_ingest("1")
        assert proc.proc is not None
        return proc, {"examwatch": proc.proc.pid}

    def _stop(self, contender: str, handle: Any) -> None:
        if contender == "bare":
            handle.close()
            return
        handle.stop()
        if contender == "examwatch":
            self.stack.ingests.remove(handle)
            self._forget_session("ingest-1")

    def _forget_session(self, client_id: str) -> None:
        """End a stopped worker's persistent session, so it queues nothing while others run."""
        user = credentials.service_user("ingest")
        c = self.broker.client(user, client_id)
        c.connect(self.broker.host, self.broker.port, clean_start=True, properties=connect_properties())
        c.loop_start()
        wait_for(c.is_connected, 10, "a clean session for the stopped worker")
        c.disconnect()
        c.loop_stop()

    def trial(self, contender: str, qos: int, messages: int, rnd: int, idle_s: float = 15.0) -> Trial:
        """Run ``messages`` at ``qos`` through ``contender``, started for this trial only."""
        base = self._window(messages)
        handle, pids = self._start(contender, qos, messages)
        try:
            with contextlib.ExitStack() as children:
                pubs = [children.enter_context(start_publisher(spec, f"publisher {i}"))
                        for i, spec in enumerate(self._specs(qos, messages, base))]
                for p in pubs:
                    p.wait_ready(timeout=600)  # a province's publisher loads 100k devices and 752 connections
                pids |= {"mosquitto": _pid(self.stack.mosquitto), "influxd": _pid(self.influx_server)}
                pids |= {f"publisher-{i}": p.pid for i, p in enumerate(pubs)}
                cpu0 = {k: procstat.cpu_seconds(pid) for k, pid in pids.items()}
                for p in pubs:
                    p.go()
                results = [PublishResult(**p.result()) for p in pubs]
                if contender == "bare":
                    got = CountResult(**handle.result())
                    arrived, end = got.received, got.last
                else:
                    database = "peer_nodered" if contender == "nodered" else "peer_examwatch"
                    arrived, end = self._wait_points(database, base, messages, sum(r.sentinels for r in results),
                                                     idle_s)
                cpu = {k: procstat.cpu_seconds(pid) - cpu0[k] for k, pid in pids.items()}
                hwm = procstat.memory_kb(pids[contender], "VmHWM")
        finally:
            self._stop(contender, handle)
        start = min(r.first_publish for r in results)
        return Trial(contender, qos, rnd, messages, arrived, end - start, cpu, hwm)


def _pid(server: Any) -> int:
    assert server.proc is not None
    return int(server.proc.pid)

