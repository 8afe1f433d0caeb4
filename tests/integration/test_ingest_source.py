"""ingest's MQTT reader against a real broker: keep-alive, a broker that stops answering, acks."""

from __future__ import annotations

import logging
import signal
import threading
import time

import pytest

from examwatch import credentials, topics
from examwatch.settings import MqttSettings
from examwatch.subscriber import Refused, Subscriber
from harness.servers import wait_for
from harness.stack import Stack, device_topic, publish_all, telemetry


def _subscriber(stack: Stack, got: list[bytes], keepalive_s: int = 5, password: str = "") -> Subscriber:
    user = credentials.service_user("ingest")
    cfg = MqttSettings(port=stack.mqtt_port, keepalive_s=keepalive_s)
    acks: list[tuple[int, int]] = []
    lock = threading.Lock()

    def on_message(topic: bytes, _payload: bytes, mid: int, epoch: int, _recv_ns: int, _dup: bool) -> None:
        got.append(topic)
        with lock:
            acks.append((mid, epoch))
            sub.ack(list(acks))
            acks.clear()

    sub = Subscriber(cfg, "t-reader", user, password or credentials.password(stack.secret, user),
                     f"$share/t/{topics.ALL}", on_message, session_expiry_s=600, receive_maximum=100)
    return sub


def test_idle_connection_is_kept_alive_and_a_silent_broker_is_left(stack: Stack,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="examwatch.mqtt")
    got: list[bytes] = []
    sub = _subscriber(stack, got)
    sub.connect()
    try:
        time.sleep(12)  # the scenario: idle for more than twice the 5 s keep-alive, nothing to wait for
        publish_all(stack.gateway("S01"), [(device_topic(stack, "S01-R01-CAM1"), telemetry("S01-R01-CAM1", "camera"))])
        wait_for(lambda: len(got) == 1, 10, "the message after an idle spell")
        assert "connection to the broker lost" not in caplog.text  # pings kept it alive
        assert stack.mosquitto.proc is not None
        stack.mosquitto.proc.send_signal(signal.SIGSTOP)  # the broker stops answering, the socket stays open
        try:
            # a ping goes out within 5 s of the last send, and is given 5 s for its answer
            wait_for(lambda: "no answer to a ping within 5 s" in caplog.text, 5 + 5 + 5, "the reader to give up")
        finally:
            stack.mosquitto.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: caplog.text.count("connected (session present: True)") >= 1, 30, "a reconnect")
        publish_all(stack.gateway("S01"), [(device_topic(stack, "S01-R01-CAM2"), telemetry("S01-R01-CAM2", "camera"))])
        wait_for(lambda: len(got) >= 2, 10, "the message after the reconnect")
    finally:
        sub.close()


def test_a_wrong_password_is_refused_with_the_brokers_reason(stack: Stack) -> None:
    sub = _subscriber(stack, [], password="wrong-password")
    with pytest.raises(Refused, match=r"0x86 bad user name or password|0x87 not authorized"):
        sub.connect()
