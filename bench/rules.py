"""Benchmark the rules engine: throughput against the bare relay, time to detect a silent device,
memory at 100k devices. Run: ``.venv/bin/python -m bench.rules`` (about two minutes).

1. Throughput: the same backlog of QoS 1 telemetry waits on one broker, in one run, first for a
   persistent-session subscriber that only counts (the bare relay), then for ``examwatch
   rules``; each is timed from its connection until it has consumed the backlog, three rounds
   alternately, medians reported. The rules run is timed to the transition raised by a last
   message (one publisher's messages arrive in order, so when its transition is in the store
   every message before it has been evaluated and committed). CPU per message is measured too:
   it holds when other processes share the two cores, which the rates do not.
2. Detection: with every device reporting each second and absence timeouts of 5 s, some devices
   stop; the time from each one's last message to its offline alarm (store time, and arrival of
   the retained alarm on MQTT) is measured. Target: ≤ timeout + 1 s.
3. Memory: the engine in-process on a 100k-device inventory with the shipped rules, every device
   observed three times, liveness committed to SQLite; peak RSS. Target: ≤ 1 GiB. The same run
   gives the evaluation rate without MQTT.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from examwatch import credentials, mqtt, sample
from examwatch.inventory import Inventory
from examwatch.rulebook.files import load_dir
from examwatch.store import open_store
from examwatch.timetable import Timetable
from harness.rules_kit import TEST_RULES, Heartbeat, RulesProcess, alarms, healthy, timetable, transitions
from harness.servers import Influx, wait_for
from harness.stack import Stack, device_topic, publish_all, telemetry
from rules.engine import Engine
from rules.types._base import observe
from rules.world import World

ROOT = Path(__file__).resolve().parents[1]
N_MESSAGES = 30_000


def _messages(stack: Stack, n: int) -> list[tuple[str, str, bytes]]:
    devices = [(d, r) for d, r in stack.inventory.devices.items() if r.kind != "power"]
    now = int(time.time() * 1000)
    return [
        (
            devices[i % len(devices)][1].site,
            device_topic(stack, devices[i % len(devices)][0]),
            telemetry(devices[i % len(devices)][0], devices[i % len(devices)][1].kind, ts_ms=now),
        )
        for i in range(n)
    ]


def _publish(stack: Stack, msgs: list[tuple[str, str, bytes]]) -> None:
    gws = {s.id: stack.gateway(s.id) for s in stack.inventory.sites}
    gw = gws["S01"]
    publish_all(gw, [(t, p) for site, t, p in msgs if site == "S01"])
    for site in ("S02", "S03"):
        publish_all(gws[site], [(t, p) for s, t, p in msgs if s == site])


def _cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process, or of ``pid``."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Relay:
    """A persistent-session subscriber that only counts (QoS 1): the bare relay."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.n, self.target, self.done_at = 0, 0, 0.0
        self.done = threading.Event()
        self.user = credentials.service_user("api")
        c = self._connect()
        c.subscribe("$share/relay/exam/v1/#", qos=1)
        time.sleep(0.5)
        self._close(c)

    def _on_message(self, _c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        self.n += 1
        if self.n == self.target:
            self.done_at = time.perf_counter()
            self.done.set()

    def _connect(self) -> paho.Client:
        cfg = self.stack.settings.mqtt
        c = mqtt.client(cfg, "relay-bench", self.user, credentials.password(self.stack.secret, self.user))
        c.on_message = self._on_message
        mqtt.connect_and_wait(c, cfg, session_expiry_s=3600, receive_maximum=10_000)
        return c

    @staticmethod
    def _close(c: paho.Client) -> None:
        c.disconnect()
        c.loop_stop()

    def drain(self, n: int) -> tuple[float, float]:
        """Consume a backlog of ``n``: (msg/s, CPU µs per message)."""
        self.n, self.target = 0, n
        self.done.clear()
        cpu0, t0 = _cpu_s(), time.perf_counter()
        c = self._connect()
        self.done.wait(300)
        cpu = _cpu_s() - cpu0
        self._close(c)
        return n / (self.done_at - t0), cpu / n * 1e6


SENTINEL = "S03-VAULT-PWR1"


def rules_drain(proc: RulesProcess, n: int, round_no: int) -> tuple[float, float]:
    """The engine drains a backlog of ``n``, timed to the sentinel's transition: (msg/s, CPU µs/msg)."""
    proc.start()
    cpu0, t0 = _cpu_s(proc.proc.pid), time.perf_counter()
    wait_for(
        lambda: len(transitions_of(proc, SENTINEL)) > round_no, 300, "the sentinel transition", interval=0.02
    )
    elapsed, cpu = time.perf_counter() - t0, _cpu_s(proc.proc.pid) - cpu0
    proc.stop()
    return n / elapsed, cpu / n * 1e6


def transitions_of(proc: RulesProcess, subject: str) -> list[dict[str, Any]]:
    return [t for t in transitions(proc.store) if t["subject"] == subject and t["rule"] == "power_mains_lost"]


def throughput(stack: Stack, rounds: int = 3) -> dict[str, Any]:
    """Alternate relay and rules on the same backlog, ``rounds`` times; medians and every round."""
    relay = Relay(stack)
    proc = RulesProcess(stack, timetable(time.time(), start_in_s=-60), TEST_RULES, restart_grace_s=600)
    proc.start()
    proc.stop()  # its session (and shared subscription) stays on the broker and queues the load
    runs: list[dict[str, float]] = []
    for i in range(rounds):
        # every message reaches both backlogs (two subscription groups); the last one, alternately
        # raising and clearing the sentinel's mains alarm, marks the end of the rules engine's work
        mains = 0.0 if i % 2 == 0 else 220.0
        sentinel = ("S03", device_topic(stack, SENTINEL), telemetry(SENTINEL, "power", mains_v=mains))
        msgs = [*_messages(stack, N_MESSAGES), sentinel]
        _publish(stack, msgs)
        relay_rate, relay_cpu = relay.drain(len(msgs))
        rules_rate, rules_cpu = rules_drain(proc, len(msgs), i)
        runs.append(
            {
                "relay_msg_s": relay_rate,
                "rules_msg_s": rules_rate,
                "relay_cpu_us": relay_cpu,
                "rules_cpu_us": rules_cpu,
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return {
        "messages": N_MESSAGES,
        "devices": len(stack.inventory.devices),
        "rounds": runs,
        **med,
        "ratio": med["rules_msg_s"] / med["relay_msg_s"],
    }


def detection(stack: Stack) -> dict[str, Any]:
    rules = {
        k: [{**r, "timeout_s": 5} if r["type"] == "absence" else r for r in v] for k, v in TEST_RULES.items()
    }
    rules["site"] = [{**r, "timeout_s": 3} if r["type"] == "absence" else r for r in rules["site"]]
    proc = RulesProcess(stack, timetable(time.time(), start_in_s=-60), rules, restart_grace_s=0)
    arrived: dict[str, float] = {}

    def on_message(_c: paho.Client, _u: object, m: paho.MQTTMessage) -> None:
        p = json.loads(m.payload)
        if p["rule"].endswith("_offline") and p["state"] == "firing":
            arrived.setdefault(p["subject"], time.time())

    c = stack.client(credentials.service_user("notifier"), on_message=on_message)
    c.subscribe("exam/v1/_alarm/#", qos=1)
    silent = [
        "S01-R01-JAM1",
        "S01-R05-CAM2",
        "S02-ENT-GATE3",
        "S02-VAULT-PWR1",
        "S03-R10-JAM1",
        "S03-REST-CAM1",
    ]
    try:
        with Heartbeat(stack, interval_s=1.0) as hb:
            hb.wait_rounds(1)
            proc.start()
            hb.wait_rounds(3)
            hb.skip.update(silent)
            last = {d: hb.last_sent[d] for d in silent}
            wait_for(
                lambda: all(d in arrived for d in silent), 30, "every offline alarm on MQTT", interval=0.05
            )
    finally:
        proc.stop()
    stored = {a["subject"]: a["opened_ns"] / 1e9 for a in alarms(proc.store, "rule LIKE '%_offline'")}
    store_s = [stored[d] - last[d] for d in silent]
    mqtt_s = [arrived[d] - last[d] for d in silent]
    return {
        "timeout_s": 5,
        "devices": len(silent),
        "store_max_s": max(store_s),
        "store_mean_s": statistics.mean(store_s),
        "mqtt_max_s": max(mqtt_s),
        "mqtt_mean_s": statistics.mean(mqtt_s),
        "other_alarms": len(alarms(proc.store, "rule LIKE '%_offline'")) - len(silent),
    }


def memory(tmp: Path, sites: int = 752) -> dict[str, Any]:
    inv = Inventory.model_validate(sample.district(formal=sites, backup=0, rooms=30, name="bench"))
    tt = Timetable.model_validate(
        {"exam": "bench", "papers": [p.model_dump() for p in timetable(time.time(), start_in_s=-60).papers]}
    )
    world = World(inv, tt)
    rss_inventory = _rss_mib()
    store = open_store(f"sqlite:///{tmp / 'mem.db'}")
    now = time.time()
    eng = Engine(store, world, load_dir(ROOT / "config" / "rules"), lambda: now, grace_s=600, tick_s=1)
    eng.restore()
    fields = {d: healthy(r.kind, world.specs[d].bands) for d, r in world.devices.items()}
    obs = [observe(world, d, now, **fields[d]) for d in world.devices]
    evaluated, t0 = 0, time.perf_counter()
    for _ in range(3):
        for o in obs:
            eng.handle(o)
            evaluated += 1
        eng.run_due()
        eng.commit()
    rate = evaluated / (time.perf_counter() - t0)
    return {
        "devices": len(world.devices),
        "rss_after_inventory_mib": rss_inventory,
        "peak_rss_mib": _rss_mib(),
        "in_process_eval_per_s": rate,
        "rules": len(eng.rules),
    }


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        influx = Influx(tmp / "influxd")
        influx.start()
        try:
            for name in ("thr", "det"):
                (tmp / name).mkdir()
            stack = Stack(tmp / "thr", influx, "bench_rules", rooms=30)
            stack.mosquitto.start()
            try:
                out["throughput"] = throughput(stack)
            finally:
                stack.close()
            stack = Stack(tmp / "det", influx, "bench_rules_det", rooms=30)
            stack.mosquitto.start()
            try:
                out["detection"] = detection(stack)
                print(json.dumps(out["detection"]), flush=True)
            finally:
                stack.close()
        finally:
            influx.stop()
        out["memory"] = memory(tmp)
        print(json.dumps(out["memory"]), flush=True)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "rules.json").write_text(json.dumps(out, indent=2))
    json.dump(out, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
