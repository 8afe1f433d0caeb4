"""The notifier's part of the alarm path: transition published on MQTT → SMS accepted by Kannel.

Run: ``.venv/bin/python -m bench.notify_latency`` (about a minute).

Starts mosquitto (generated config and ACL), Kannel with fakesmsc and ``examwatch notify`` (the
test roster, its own SQLite store), then publishes alarm transitions one at a time as the rules
engine does (QoS 1, retained) and times each from just before the publish to the row's
``sent_ns``, taken right after Kannel answered ``0: Accepted for delivery``, on the same clock.
Legs: publish → notification stored (``created_ns``: MQTT, the planner's transaction) and stored →
accepted (commit, the sender thread, ``sendsms``).

The floor, measured in the same run on the same servers: a bare chain with nothing the notifier
adds, a paho subscriber that commits one row to SQLite (WAL, synchronous NORMAL) and calls
``sendsms`` over a kept-alive connection (``../shared/SERVERS.md``: 1.5-2.5 ms at p99).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import urllib3

from examwatch import credentials, mqtt
from harness.notify_kit import Processes, notifications, transition, write_config
from harness.servers import Influx, Kannel, wait_for
from harness.stack import Stack

PROBES = 300
GAP_S = 0.05


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def notifier_run(stack: Stack, kannel: Kannel) -> dict[str, list[float]]:
    procs = Processes(stack)
    procs.start(write_config(stack, kannel, delivery_reports=False))
    rules = stack.client("svc-rules")
    legs: dict[str, list[float]] = {"total": [], "to_store": [], "store_to_kannel": []}
    published: dict[int, int] = {}
    try:
        # One at a time, far enough apart that each is alone; the times are read from the store at
        # the end, so that nothing polls it while the notifier works.
        for i in range(PROBES):
            msg = transition(10_000 + i, 1, "firing", site=f"S0{i % 3 + 1}", rule=f"probe_{i}")
            published[10_000 + i] = time.time_ns()
            rules.publish(*msg, qos=1, retain=True)
            time.sleep(GAP_S)
        wait_for(lambda: sum(r["status"] == "sent" for r in notifications(stack)) == PROBES, 30, "every probe sent")
    finally:
        procs.kill_all()
    for r in notifications(stack):
        t0 = published[r["alarm_id"]]
        legs["total"].append((r["sent_ns"] - t0) / 1e6)
        legs["to_store"].append((r["created_ns"] - t0) / 1e6)
        legs["store_to_kannel"].append((r["sent_ns"] - r["created_ns"]) / 1e6)
    return legs


def floor_run(stack: Stack, kannel: Kannel, tmp: Path) -> list[float]:
    """paho → SQLite commit → sendsms, nothing else."""
    db = sa.create_engine(f"sqlite:///{tmp}/floor.db")
    with db.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS o (id INTEGER PRIMARY KEY, body BLOB)")
    raw = db.raw_connection()
    raw.execute("PRAGMA synchronous=NORMAL")
    pool = urllib3.connection_from_url(kannel.sendsms_url, maxsize=1, retries=False)
    done: dict[int, int] = {}
    event = threading.Event()

    def on_message(_c: Any, _u: object, m: Any) -> None:
        raw.execute("INSERT INTO o (body) VALUES (?)", (bytes(m.payload),))
        raw.commit()
        r = pool.request("GET", "/cgi-bin/sendsms", fields={
            "username": kannel.user, "password": kannel.password, "to": "13900000001", "from": "10690000",
            "text": "底线", "charset": "UTF-8", "coding": "2"})
        if r.data.startswith(b"0:"):
            done[len(done)] = time.time_ns()
            event.set()

    user = credentials.service_user("notifier")
    sub = mqtt.client(stack.settings.mqtt, "floor-sub", user, credentials.password(stack.secret, user))
    sub.on_message = on_message
    mqtt.connect_and_wait(sub, stack.settings.mqtt, clean_start=True)
    sub.subscribe("exam/v1/_alarm/S09/#", qos=1)
    time.sleep(0.5)  # the subscription is in place before the first probe (a bench, not a test)
    rules = stack.client("svc-rules")
    out = []
    for i in range(PROBES):
        event.clear()
        t0 = time.time_ns()
        rules.publish(*transition(20_000 + i, 1, "firing", site="S09", rule=f"floor_{i}"), qos=1)
        if not event.wait(10):
            raise TimeoutError(f"floor probe {i}")
        out.append((done[len(done) - 1] - t0) / 1e6)
        time.sleep(GAP_S)
    sub.disconnect()
    sub.loop_stop()
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-notify-latency-") as name:
        tmp = Path(name)
        influx = Influx(tmp / "influxd")
        influx.start()
        stack = Stack(tmp / "stack", influx, "bench")
        stack.mosquitto.start()
        kannel = Kannel(tmp / "kannel")
        kannel.start()
        try:
            floor = floor_run(stack, kannel, tmp)
            legs = notifier_run(stack, kannel)
        finally:
            kannel.stop()
            stack.close()
            influx.kill()
    print(f"{PROBES} alarm transitions, one every {GAP_S * 1e3:.0f} ms; load average {os.getloadavg()[0]:.2f}")
    print("| leg | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
    rows = [("floor: paho → SQLite commit → sendsms", floor),
            ("notifier: publish → Kannel accepted", legs["total"]),
            ("  publish → notification stored", legs["to_store"]),
            ("  stored → Kannel accepted", legs["store_to_kannel"])]
    for title, values in rows:
        print(f"| {title} | {statistics.median(values):.2f} | {pct(values, 99):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    main()
