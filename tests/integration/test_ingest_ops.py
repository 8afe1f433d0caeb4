"""Operations: Prometheus metrics, the TLS listener, broker-config from the command line."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from examwatch import broker, credentials, mqtt
from examwatch.settings import BrokerSettings, MqttSettings
from harness.servers import Mosquitto, current_user, free_port, wait_for
from harness.stack import EXAMWATCH, IngestProcess, Stack, device_topic, publish_all, telemetry


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def test_metrics_count_received_written_and_rejected(stack: Stack) -> None:
    port = free_port()
    stack.start_ingest(metrics_port=port)
    gw = stack.gateway("S01")
    base = time.time_ns() // 1_000_000 - 10_000
    msgs = [
        (device_topic(stack, "S01-R01-CAM1"), telemetry("S01-R01-CAM1", "camera", ts_ms=base + i)) for i in range(50)
    ]
    msgs.append((device_topic(stack, "S01-R01-CAM1"), b"garbage"))
    publish_all(gw, msgs)
    # A service's message (here the rules engine's alarm) reaches ingest too: counted, not stored, not refused.
    publish_all(stack.client(credentials.service_user("rules")), [("exam/v1/_alarm/S01/r/S01-R01-CAM1", b"{}")])
    stack.wait_count("camera", 50)

    def counted() -> bool:
        text = _metrics(port)
        return (
            'examwatch_ingest_received_total{worker="1"} 52.0' in text
            and 'examwatch_ingest_rejected_total{reason="not_json",worker="1"} 1.0' in text
            and 'examwatch_ingest_service_messages_total{worker="1"} 1.0' in text
        )

    wait_for(counted, 30, "metrics to count the messages")
    assert 'examwatch_ingest_spool_depth{worker="1"} 0.0' in _metrics(port)


def _self_signed(key: Path, cert: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )


def test_tls_listener_carries_device_traffic_to_ingest(tmp_path: Path, stack: Stack) -> None:
    """Ingest and a device both over TLS: the point lands. A plain client and one trusting another
    CA are turned away at the TLS port."""
    key, cert = tmp_path / "broker.key", tmp_path / "broker.crt"
    _self_signed(key, cert)
    other_key, other_ca = tmp_path / "other.key", tmp_path / "other.crt"
    _self_signed(other_key, other_ca)
    plain, tls = free_port(), free_port()
    cfg = BrokerSettings(
        port=plain, tls_port=tls, certfile=cert, keyfile=key, data_dir=tmp_path / "mq", user=current_user()
    )
    files = broker.write(stack.inventory, stack.secret, cfg, tmp_path / "broker")
    server = Mosquitto(tmp_path / "mq", files.conf, tls)
    server.start()
    config = tmp_path / "ingest-tls.toml"
    text = stack.config.read_text()
    assert f"[mqtt]\nport = {stack.mqtt_port}\n" in text
    config.write_text(text.replace(f"[mqtt]\nport = {stack.mqtt_port}\n",
                                   f'[mqtt]\nport = {tls}\ntls = true\nca_file = "{cert}"\n'))
    ingest = IngestProcess(tmp_path / "ingest", config, "tls", 0)
    try:
        ingest.start(timeout=30)  # ready: "connected (session present …)" over TLS
        settings = MqttSettings(port=tls, tls=True, ca_file=cert)
        device = "S01-R01-JAM1"
        c = mqtt.client(settings, "t-tls", device, credentials.password(stack.secret, device))
        assert mqtt.connect_and_wait(c, settings, clean_start=True).session_present is False
        publish_all(c, [(device_topic(stack, device), telemetry(device, "jammer"))])
        c.disconnect()
        c.loop_stop()
        stack.wait_count("jammer", 1)

        no_tls = MqttSettings(port=tls)
        plain_client = mqtt.client(no_tls, "t-plain", device, credentials.password(stack.secret, device))
        with pytest.raises(mqtt.ConnectRefused):
            mqtt.connect_and_wait(plain_client, no_tls, clean_start=True, timeout_s=5)
        wrong_ca = MqttSettings(port=tls, tls=True, ca_file=other_ca)
        doubter = mqtt.client(wrong_ca, "t-wrong-ca", device, credentials.password(stack.secret, device))
        with pytest.raises(mqtt.ConnectRefused, match="CERTIFICATE_VERIFY_FAILED"):
            mqtt.connect_and_wait(doubter, wrong_ca, clean_start=True, timeout_s=5)
    finally:
        ingest.stop()
        server.stop()


def test_broker_config_command_writes_files_mosquitto_accepts(tmp_path: Path, stack: Stack) -> None:
    out = tmp_path / "generated"
    result = subprocess.run(
        [EXAMWATCH, "broker-config", "--config", str(stack.config), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    users = 4 + len(stack.inventory.sites) + len(stack.inventory.devices)  # services, gateways, devices
    assert f"for {users} users" in result.stdout
    conf = (out / "mosquitto.conf").read_text()
    port = free_port()
    (out / "mosquitto.conf").write_text(conf.replace(f"listener {stack.mqtt_port} ", f"listener {port} "))
    server = Mosquitto(tmp_path / "mq2", out / "mosquitto.conf", port)
    server.start()
    server.stop()
