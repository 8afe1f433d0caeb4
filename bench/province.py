"""Benchmark: a province from one simulator process (1,000 sites, 101,000 devices by default).

Starts a private mosquitto on a free loopback port, a subscriber counting every telemetry message
at the broker, and ``examwatch simulate`` in gateway mode (one connection per site) at one report
a minute for ``--minutes``. Prints the figures (reports, rate against nominal, lag, memory) and
whether each target held: every device reported every interval, nothing dropped, lag p99 within
10 s of a 60 s cadence, peak RSS under 2 GB, memory not growing with running time, every report
received by the subscriber. Exit code 1 when a target was missed. Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/province.py            # about 4 minutes with setup
    PYTHONPATH=. .venv/bin/python bench/province.py --sites 50 --minutes 1   # a quick look

It was a test (tests/integration/test_sim_province.py); it is a measurement, so it lives here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from examwatch import broker, credentials, mqtt, sample
from examwatch.inventory import Inventory
from examwatch.settings import load_settings
from harness.servers import Mosquitto, current_user, free_port

EXAMWATCH = str(Path(sys.executable).parent / "examwatch")


def run(sites: int, rooms: int, interval: int, minutes: float, root: Path) -> tuple[dict[str, Any], list[str]]:
    """Simulate the province; return the simulator's figures and the targets missed."""
    data = sample.district(formal=sites, backup=0, rooms=rooms, name="全省")
    inv_path = root / "province.yaml"
    inv_path.write_text(json.dumps(data, ensure_ascii=False))  # JSON is YAML, and much faster to write
    inventory = Inventory.model_validate(data)
    devices = len(inventory.devices)
    port = free_port()
    config = root / "examwatch.toml"
    config.write_text(
        f'secret = "province-bench-secret-0123456789"\ninventory = "{inv_path}"\n[mqtt]\nport = {port}\n'
        f'[broker]\nport = {port}\ndata_dir = "{root / "mq"}"\nuser = "{current_user()}"\n'
    )
    settings = load_settings(config)
    # Gateway mode needs only the gateways' and services' users: leave the device users out.
    gateways_only = Inventory(district=inventory.district,
                              sites=tuple(s.model_copy(update={"devices": ()}) for s in inventory.sites))
    files = broker.write(gateways_only, settings.secret.get_secret_value(), settings.broker, root / "broker")
    mosquitto = Mosquitto(root / "mosquitto", files.conf, port)
    mosquitto.start()
    received = {"n": 0}
    lock = threading.Lock()

    def on_message(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with lock:
            received["n"] += 1

    user = credentials.service_user("ingest")
    counter = mqtt.client(settings.mqtt, "province-counter", user,
                          credentials.password(settings.secret.get_secret_value(), user))
    counter.on_message = on_message
    try:
        mqtt.connect_and_wait(counter, settings.mqtt, clean_start=True)
        counter.subscribe("exam/v1/+/+/+/telemetry", qos=0)
        stats = root / "stats.json"
        subprocess.run([EXAMWATCH, "simulate", "--config", str(config), "--interval", str(interval), "--duration",
                        f"{minutes:g}", "--quiet", "--stats", str(stats)], check=True, timeout=600 + minutes * 120)
        figures: dict[str, Any] = json.loads(stats.read_text())
        reports = int(minutes * 60 / interval) * devices
        deadline = time.monotonic() + 60
        while received["n"] < reports and time.monotonic() < deadline:
            time.sleep(0.2)
        figures["received"] = received["n"]
    finally:
        counter.disconnect()
        counter.loop_stop()
        mosquitto.kill()
    missed = targets_missed(figures, reports)
    return figures, missed


def targets_missed(figures: dict[str, Any], reports: int) -> list[str]:
    """Which of the province's targets the run missed (none: all held)."""
    missed = []
    if figures["reports"] != reports:
        missed.append(f"{figures['reports']} reports of {reports} due")
    if figures["dropped"]:
        missed.append(f"{figures['dropped']} dropped")
    if figures["lag_p99_le_s"] > 10.0:
        missed.append(f"lag p99 ≤ {figures['lag_p99_le_s']} s, over 10 s")
    if figures["peak_rss_mb"] >= 2000:
        missed.append(f"peak RSS {figures['peak_rss_mb']} MB")
    if figures["rss_mb"] >= figures["rss_start_mb"] + 150:
        missed.append(f"RSS grew from {figures['rss_start_mb']} to {figures['rss_mb']} MB while running")
    if figures["received"] < reports:
        missed.append(f"the subscriber received {figures['received']} of {reports}")
    return missed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--rooms", type=int, default=22, help="exam rooms a site: 13 + 4 × rooms devices")
    ap.add_argument("--interval", type=int, default=60, help="seconds between a device's reports")
    ap.add_argument("--minutes", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="examwatch-province-") as tmp:
        f, missed = run(args.sites, args.rooms, args.interval, args.minutes, Path(tmp))
    print(f"province: {f['devices']} devices, {f['reports']} reports in {f['elapsed_s']} s "
          f"({f['report_rate']} reports/s, nominal {f['nominal_msg_s']:.0f}/s), lag p99 ≤ {f['lag_p99_le_s']} s, "
          f"max {f['max_lag_s']:.2f} s, dropped {f['dropped']}, peak RSS {f['peak_rss_mb']} MB, RSS "
          f"{f['rss_start_mb']} MB at the start and {f['rss_mb']} MB at the end, {f['received']} received")
    print("targets: all held" if not missed else "targets missed: " + "; ".join(missed))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
