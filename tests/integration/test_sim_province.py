"""Province scale: 1,000 sites and 101,000 devices from one simulator process, for 2 minutes."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from examwatch import broker, credentials, mqtt, sample
from examwatch.inventory import Inventory
from examwatch.settings import load_settings
from harness.servers import Influx, Mosquitto, current_user, free_port, wait_for
from harness.stack import EXAMWATCH

SITES, ROOMS = 1000, 22  # 13 + 4 x 22 = 101 devices a site
INTERVAL = 60            # one report a minute: about 1,700 msg/s


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_province_holds_its_cadence_for_two_minutes(tmp_path: Path, influx_server: Influx) -> None:
    data = sample.district(formal=SITES, backup=0, rooms=ROOMS, name="全省")
    inv_path = tmp_path / "province.yaml"
    inv_path.write_text(json.dumps(data, ensure_ascii=False))  # JSON is YAML, and much faster to write
    inventory = Inventory.model_validate(data)
    devices = len(inventory.devices)
    port = free_port()
    config = tmp_path / "examwatch.toml"
    config.write_text(
        f'secret = "province-test-secret-0123456789"\ninventory = "{inv_path}"\n[mqtt]\nport = {port}\n'
        f'[broker]\nport = {port}\ndata_dir = "{tmp_path / "mq"}"\nuser = "{current_user()}"\n'
    )
    settings = load_settings(config)
    # Gateway mode needs only the gateways' and services' users: leave the 101k device users out.
    gateways_only = Inventory(district=inventory.district,
                              sites=tuple(s.model_copy(update={"devices": ()}) for s in inventory.sites))
    files = broker.write(gateways_only, settings.secret.get_secret_value(), settings.broker, tmp_path / "broker")
    mosquitto = Mosquitto(tmp_path / "mosquitto", files.conf, port)
    mosquitto.start()
    received = {"n": 0}
    lock = threading.Lock()

    def on_message(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with lock:
            received["n"] += 1

    user = credentials.service_user("ingest")
    counter = mqtt.client(settings.mqtt, "province-counter", user, credentials.password(settings.secret.get_secret_value(), user))
    counter.on_message = on_message
    try:
        mqtt.connect_and_wait(counter, settings.mqtt, clean_start=True)
        counter.subscribe("exam/v1/+/+/+/telemetry", qos=0)
        stats = tmp_path / "stats.json"
        subprocess.run(
            [EXAMWATCH, "simulate", "--config", str(config), "--interval", str(INTERVAL), "--duration", "2",
             "--quiet", "--stats", str(stats)],
            check=True, timeout=800,
        )
        run = json.loads(stats.read_text())
        print(f"\nprovince: {run['devices']} devices, {run['reports']} reports in {run['elapsed_s']} s "
              f"({run['report_rate']} reports/s, nominal {run['nominal_msg_s']:.0f}/s), lag p99 ≤ "
              f"{run['lag_p99_le_s']} s, max {run['max_lag_s']:.2f} s, peak RSS {run['peak_rss_mb']} MB, "
              f"RSS {run['rss_start_mb']} MB at the start, {run['rss_mb']} MB at the end")
        assert run["devices"] == devices == SITES * (13 + 4 * ROOMS)
        assert run["reports"] == 2 * devices, "every device reports once a minute for 2 minutes"
        assert run["dropped"] == 0
        assert run["lag_p99_le_s"] <= 10.0, "reports fell behind their 60 s cadence"
        assert run["report_rate"] >= 0.95 * run["nominal_msg_s"]
        assert run["peak_rss_mb"] < 2000
        # Memory is bounded: what the run adds after connecting is small and does not grow with time.
        assert run["rss_mb"] < run["rss_start_mb"] + 150
        wait_for(lambda: received["n"] >= 2 * devices, 60, "every telemetry report at the broker's subscriber")
    finally:
        counter.disconnect()
        counter.loop_stop()
        mosquitto.kill()
