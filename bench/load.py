"""Load for the benchmarks: publisher processes sending a realistic mix, and a counting subscriber.

Each publisher process holds one gateway connection per site it serves (MQTT user ``gw-<site>``,
as the generated ACL allows) and drives them all from one thread with ``select``, so publishing
costs as little CPU as paho allows. What a connection has outstanding (QoS 1: not yet
acknowledged; QoS 0: not yet written to the socket) is bounded by ``window``, well under
paho's 16-bit message ids.

Messages go round-robin over the publisher's devices, so the mix of kinds is the inventory's.
Every message gets its own device timestamp ``base_ms + j * stride + offset``, so no two points
share series and time and the points in InfluxDB can be counted against the messages sent.
With ``clock="now"`` (paced runs) the timestamp is the wall clock when the message is made
instead: telemetry as live devices send it, which the rules engine judges like the real thing
(those sequence timestamps run ahead of the clock at any rate above 1,000 msg/s). Devices in
``exclude`` are left to someone else (a benchmark that drives their readings itself).

Publishers and the counting subscriber run as ``python -m bench.load publish|count`` (see
``start_publisher`` and ``start_counter``), driven over pipes by bench.child: fresh interpreters,
so they share no GIL with the measured processes, and no semaphores, so no /dev/shm is needed.
"""

from __future__ import annotations

import json
import random
import select
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.child import Child, Control
from examwatch import credentials, inventory, topics
from examwatch.mqtt import connect_properties
from simulators.readings import TELEMETRY

KEEPALIVE_S = 30


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    secret: str

    def client(self, username: str, client_id: str, **kw: Any) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, **kw)
        c.username_pw_set(username, credentials.password(self.secret, username))
        return c


@dataclass(frozen=True)
class PublishSpec:
    """What one publisher process sends: ``count`` messages (or for ``duration_s`` at ``rate``)."""

    broker: Broker
    inventory: Path
    sites: tuple[str, ...]
    qos: int
    base_ms: int
    stride: int          # number of publisher processes: timestamps interleave
    offset: int          # this publisher's index
    count: int = 0       # messages to send (0 with duration_s: until the duration is over)
    window: int = 1000
    rate: float = 0.0    # messages/s for this publisher; 0 = as fast as the broker takes them
    duration_s: float = 0.0
    seed: int = 1
    clock: str = "sequence"       # device timestamps: "sequence" (countable, see above) or "now" (live)
    exclude: tuple[str, ...] = ()  # device ids not to publish for

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PublishSpec:
        """The spec back from its JSON form (``asdict``)."""
        return cls(**{**d, "broker": Broker(**d["broker"]), "inventory": Path(d["inventory"]),
                      "sites": tuple(d["sites"]), "exclude": tuple(d.get("exclude", ()))})


#: The kind each publisher sends last: few series, so InfluxDB counts it cheaply (see rig.Rig.trial).
SENTINEL_KIND = "power"


@dataclass(frozen=True)
class PublishResult:
    sent: int
    sentinels: int         # messages of SENTINEL_KIND among them
    first_publish: float   # time.monotonic(), comparable across processes (CLOCK_MONOTONIC)
    last_ack: float


def messages(spec: PublishSpec, inv: inventory.Inventory) -> Iterator[tuple[str, str, bytes]]:
    """(site, topic, payload) for this publisher, endlessly, round-robin over its sites' devices."""
    rng = random.Random(spec.seed + spec.offset)
    skip = set(spec.exclude)
    devices = [(s.id, d) for s in inv.sites if s.id in spec.sites for d in s.devices if d.id not in skip]
    if not devices:
        raise ValueError(f"publisher {spec.offset}: no device left to publish for")
    topic = {d.id: topics.device_topic(site, d.kind.value, d.id, "telemetry") for site, d in devices}
    if spec.clock not in ("sequence", "now"):
        raise ValueError(f"publisher {spec.offset}: clock {spec.clock!r} is neither 'sequence' nor 'now'")
    live = spec.clock == "now"
    j = 0
    while True:
        site, d = devices[j % len(devices)]
        ts = time.time_ns() // 1_000_000 if live else spec.base_ms + j * spec.stride + spec.offset
        payload = TELEMETRY[d.kind.value](d, ts, rng, 5)
        yield site, topic[d.id], json.dumps(payload, separators=(",", ":")).encode()
        j += 1


class _Conn:
    def __init__(self, client: paho.Client) -> None:
        self.client = client
        self.outstanding = 0
        self.last_ack = 0.0
        client.on_publish = self._on_publish

    def _on_publish(self, _c: paho.Client, _u: object, _mid: int, _rc: object, _p: object) -> None:
        self.outstanding -= 1
        self.last_ack = time.monotonic()


class _Publisher:
    """Several connections driven from one thread: publish, then read acks and write when due."""

    def __init__(self, spec: PublishSpec) -> None:
        self.spec = spec
        self.conns: dict[str, _Conn] = {}
        for site in spec.sites:
            user = credentials.gateway_user(site)
            c = spec.broker.client(user, f"bench-pub-{spec.offset}-{site}")
            self.conns[site] = _Conn(c)
        self._by_sock: dict[Any, _Conn] = {}
        self._misc_at = 0.0

    def connect(self) -> None:
        for site, conn in self.conns.items():
            c = conn.client
            c.connect(self.spec.broker.host, self.spec.broker.port, keepalive=KEEPALIVE_S, clean_start=True,
                      properties=connect_properties())
            deadline = time.monotonic() + 60  # a province broker checks 100k users
            while not c.is_connected():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"publisher: no CONNACK for site {site}'s gateway")
                c.loop(0.05)
            self._by_sock[c.socket()] = conn

    def pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` for acks or a writable socket and handle them."""
        socks = list(self._by_sock)
        writers = [s for s, conn in self._by_sock.items() if conn.client.want_write()]
        readable, writable, _ = select.select(socks, writers, [], timeout)
        for s in readable:
            self._by_sock[s].client.loop_read()
        for s in writable:
            self._by_sock[s].client.loop_write()
        now = time.monotonic()
        if now >= self._misc_at:
            self._misc_at = now + 1.0
            for conn in self.conns.values():
                conn.client.loop_misc()

    def publish(self, site: str, topic: str, payload: bytes) -> None:
        conn = self.conns[site]
        while conn.outstanding >= self.spec.window:
            self.pump(0.05)
        conn.outstanding += 1
        conn.client.publish(topic, payload, qos=self.spec.qos)

    def drain(self, timeout: float = 120.0) -> float:
        """Wait until every message is acknowledged (or written, at QoS 0); the last ack's time."""
        deadline = time.monotonic() + timeout
        while any(c.outstanding or c.client.want_write() for c in self.conns.values()):
            if time.monotonic() > deadline:
                raise RuntimeError("publisher: acks missing after the deadline")
            self.pump(0.05)
        return max(c.last_ack for c in self.conns.values())

    def close(self) -> None:
        for conn in self.conns.values():
            conn.client.disconnect()


def start_publisher(spec: PublishSpec, what: str) -> Child:
    """Start a publisher process for ``spec``; it reports a ``PublishResult``."""
    return Child(what, "bench.load", "publish", asdict(spec))


def publisher_main(spec: PublishSpec, ctl: Control) -> None:
    """Entry point of a publisher process: connect, prepare, wait for ``go``, publish, report."""
    inv = inventory.load(spec.inventory)
    pub = _Publisher(spec)
    pub.connect()
    source = messages(spec, inv)
    batch = [next(source) for _ in range(spec.count)] if not spec.rate else []
    sentinels = [i for i, (_, topic, _) in enumerate(batch) if topic.split("/")[3] == SENTINEL_KIND]
    if sentinels:  # end on a sentinel: when it is in InfluxDB, (nearly) everything before it is too
        batch.append(batch.pop(sentinels[-1]))
    ctl.ready()
    ctl.wait_go()
    first = time.monotonic()
    sent = 0
    if spec.rate:
        # Paced: publish what is due every 10 ms until the duration is over or stop is set.
        end = first + spec.duration_s
        while not ctl.stop.is_set() and (now := time.monotonic()) < end:
            due = int((now - first) * spec.rate)
            while sent < due:
                pub.publish(*next(source))
                sent += 1
            pub.pump(0.01)
    else:
        for site, topic, payload in batch:
            pub.publish(site, topic, payload)
        sent = len(batch)
    last = pub.drain()
    ctl.report(asdict(PublishResult(sent, len(sentinels), first, last)))
    pub.close()


@dataclass(frozen=True)
class CountResult:
    received: int
    first: float
    last: float


@dataclass(frozen=True)
class CountSpec:
    """What the counting subscriber waits for: ``expected`` messages, or none for ``idle_s``."""

    broker: Broker
    expected: int
    idle_s: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CountSpec:
        """The spec back from its JSON form (``asdict``)."""
        return cls(**{**d, "broker": Broker(**d["broker"])})


def start_counter(spec: CountSpec) -> Child:
    """Start the counting subscriber; it reports a ``CountResult`` and stays until closed."""
    return Child("counting subscriber", "bench.load", "count", asdict(spec))


def counter_main(spec: CountSpec, ctl: Control) -> None:
    """A subscriber that only counts: the broker's bare relay rate, on the same subscription form as ingest.

    It subscribes at QoS 1 to a shared subscription of its own group as ``svc-ingest`` and acks
    each QoS 1 message as paho does by default, right after the callback. It reports when
    ``expected`` messages arrived, or when none came for ``idle_s`` (QoS 0 may lose some),
    then stays (so its CPU time can still be read) until the parent stops it.
    """
    broker, expected, idle_s = spec.broker, spec.expected, spec.idle_s
    state = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()
    user = credentials.service_user("ingest")
    c = broker.client(user, "bench-counter")

    def on_message(_c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        now = time.monotonic()
        if not state["n"]:
            state["first"] = now
        state["n"] += 1
        state["last"] = now
        if state["n"] >= expected:
            done.set()

    subscribed = threading.Event()
    c.on_message = on_message
    c.on_subscribe = lambda *_: subscribed.set()
    c.connect(broker.host, broker.port, keepalive=KEEPALIVE_S, clean_start=True,
              properties=connect_properties(receive_maximum=65535))
    c.loop_start()
    c.subscribe(f"$share/bench/{topics.ALL}", qos=1)
    if not subscribed.wait(10):
        raise RuntimeError("counter: no SUBACK")
    ctl.ready()
    seen, seen_at = 0, time.monotonic()
    while not done.wait(0.25) and not ctl.stop.is_set():
        now = time.monotonic()
        if state["n"] != seen:
            seen, seen_at = int(state["n"]), now
        elif now - seen_at > (idle_s if seen else 60):
            break
    ctl.report(asdict(CountResult(int(state["n"]), state["first"], state["last"])))
    ctl.stop.wait()
    c.disconnect()
    c.loop_stop()


def main(role: str) -> None:
    """``python -m bench.load publish|count``: one load process, its spec on stdin (bench.child)."""
    ctl = Control()
    if role == "publish":
        publisher_main(PublishSpec.from_dict(ctl.spec), ctl)
    elif role == "count":
        counter_main(CountSpec.from_dict(ctl.spec), ctl)
    else:
        raise SystemExit(f"bench.load: unknown role {role!r} (publish or count)")


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]))
