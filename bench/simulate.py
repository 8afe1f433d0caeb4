"""Benchmark: the largest district one simulator process sustains at its nominal cadence.

Starts a private mosquitto on a free loopback port, measures bare paho publishing (one
connection, QoS 1, the simulator's own payloads pre-built, at most 20,000 unacknowledged) as the
ceiling, then runs ``examwatch simulate`` in gateway mode on districts of growing size, each for
``--seconds`` at the nominal cadence (``--interval``, real time). A size is sustained when every
device reported every interval, nothing was dropped and the 99th percentile lag behind the
cadence stayed within one second. Prints a Markdown table for BENCHMARKS.md, and JSON with
``--json``. Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/simulate.py --sites 25,50,100,200,300
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from examwatch import broker, credentials, sample, topics
from examwatch.inventory import Inventory
from examwatch.settings import Settings, load_settings
from harness.servers import Mosquitto, current_user, free_port
from simulators.readings import TELEMETRY

ROOMS = 22  # 13 + 4 x 22 = 101 devices a site
EXAMWATCH = str(Path(sys.executable).parent / "examwatch")


def bare_paho(settings: Settings, inv: Inventory, seconds: float) -> dict[str, Any]:
    """Publish pre-built telemetry through one plain paho connection as fast as it goes."""
    site = inv.sites[0]
    user = credentials.gateway_user(site.id)
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=paho.MQTTv311)
    c.username_pw_set(user, credentials.password(settings.secret.get_secret_value(), user))
    c.max_queued_messages_set(0)
    c.max_inflight_messages_set(0)
    acked = threading.Semaphore(20_000)
    c.on_publish = lambda *_: acked.release()
    c.connect(settings.mqtt.host, settings.mqtt.port)
    c.loop_start()
    rng = random.Random(1)
    msgs = [(topics.device_topic(site.id, d.kind.value, d.id, "telemetry"),
             json.dumps(TELEMETRY[d.kind.value](d, int(time.time() * 1000), rng, 5)).encode())
            for d in site.devices]
    sent, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for topic, payload in msgs:
            acked.acquire()
            c.publish(topic, payload, qos=1)
            sent += 1
    for _ in range(20_000):
        acked.acquire()
    elapsed = time.perf_counter() - start
    c.disconnect()
    c.loop_stop()
    return {"messages": sent, "msg_s": round(sent / elapsed)}


def trial(root: Path, base_toml: str, sites: int, interval: int, seconds: float) -> dict[str, Any]:
    data = sample.district(formal=sites, backup=0, rooms=ROOMS, name="bench")
    inv_path = root / f"district-{sites}.yaml"
    inv_path.write_text(json.dumps(data, ensure_ascii=False))
    config = root / f"sim-{sites}.toml"
    config.write_text(f'inventory = "{inv_path}"\n' + base_toml)
    stats = root / f"stats-{sites}.json"
    subprocess.run([EXAMWATCH, "simulate", "--config", str(config), "--interval", str(interval),
                    "--duration", str(seconds / 60), "--quiet", "--stats", str(stats)], check=True)
    run: dict[str, Any] = json.loads(stats.read_text())
    rounds = int(seconds // interval)
    run["sustained"] = (run["reports"] >= run["devices"] * rounds and run["dropped"] == 0
                        and run["lag_p99_le_s"] <= 1.0)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="25,50,100,200,300", help="district sizes to try, in sites")
    parser.add_argument("--interval", type=int, default=5, help="nominal report cadence, s")
    parser.add_argument("--seconds", type=float, default=60, help="length of each trial, s")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sites.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        base_toml = (f'secret = "bench-secret-0123456789abcdef"\n[mqtt]\nport = {port}\n'
                     f'[broker]\nport = {port}\ndata_dir = "{root / "mq"}"\nuser = "{current_user()}"\n')
        (root / "broker.toml").write_text(base_toml)
        settings = load_settings(root / "broker.toml")
        largest = Inventory.model_validate(sample.district(formal=max(sizes), backup=0, rooms=ROOMS))
        gateways = Inventory(district=largest.district,
                             sites=tuple(s.model_copy(update={"devices": ()}) for s in largest.sites))
        files = broker.write(gateways, settings.secret.get_secret_value(), settings.broker, root / "broker")
        mosquitto = Mosquitto(root / "mosquitto", files.conf, port)
        mosquitto.start()
        try:
            bare = bare_paho(settings, largest, 10)
            print(f"bare paho, one connection, QoS 1: {bare['msg_s']:,} msg/s", flush=True)
            runs = []
            for sites in sizes:
                run = trial(root, base_toml, sites, args.interval, args.seconds)
                runs.append(run)
                print(f"{sites} sites, {run['devices']:,} devices: {run['report_rate']:,.0f} reports/s "
                      f"(nominal {run['nominal_msg_s']:,.0f}), lag p99 ≤ {run['lag_p99_le_s']} s, "
                      f"peak RSS {run['peak_rss_mb']:.0f} MB: {'sustained' if run['sustained'] else 'NOT sustained'}",
                      flush=True)
                if not run["sustained"]:
                    break
        finally:
            mosquitto.kill()
    best = max((r for r in runs if r["sustained"]), key=lambda r: r["devices"], default=None)
    print("\n| district | devices | nominal msg/s | sent msg/s | lag p99 ≤ | peak RSS | sustained |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['devices'] // 101} sites | {r['devices']:,} | {r['nominal_msg_s']:,.0f} | {r['msg_rate']:,.0f} "
              f"| {r['lag_p99_le_s']} s | {r['peak_rss_mb']:.0f} MB | {'yes' if r['sustained'] else 'no'} |")
    print(f"| bare paho (1 connection) | — | — | {bare['msg_s']:,} | — | — | — |")
    if best:
        print(f"\nlargest sustained: {best['devices']:,} devices at a {args.interval} s cadence "
              f"({best['msg_rate']:,.0f} msg/s = {best['msg_rate'] / bare['msg_s']:.0%} of bare paho)")
    if args.json:
        args.json.write_text(json.dumps({"bare_paho": bare, "runs": runs, "interval_s": args.interval}, indent=2))


if __name__ == "__main__":
    main()
