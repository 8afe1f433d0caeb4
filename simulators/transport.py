"""Many MQTT connections on one asyncio loop: paho clients driven by the loop's selector.

This is paho's documented external-loop pattern (socket open/close and write-interest
callbacks, ``loop_misc`` once a second) rather than aiomqtt, because the simulator needs
fire-and-forget QoS 1 publishing with a bound on what is outstanding (aiomqtt awaits each
PUBACK) and a way to lose the network abruptly. One thread and one selector serve every
connection; there is no thread per device.

Simulated devices speak MQTT 3.1.1, as most field devices do, where examwatch's own services
speak 5 (examwatch.mqtt): paho decodes a v5 PUBACK's reason code and properties in Python,
which cost about half the simulator's CPU per message at province scale. A device that loses
its network is simulated by closing its socket without DISCONNECT, so the broker publishes its
Last Will exactly as it would for a real loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from examwatch import mqtt, topics
from examwatch.settings import MqttSettings

log = logging.getLogger("examwatch.simulate")
#: Messages a connection may hold unsent; beyond it a publish is dropped and counted.
MAX_QUEUED = 20_000
_RECONNECT_AFTER_S = 2.0


class Link:
    """One MQTT connection (a device's own, or a site gateway's) served by the running loop."""

    def __init__(
        self, cfg: MqttSettings, client_id: str, username: str, password: str, will_topic: str | None = None
    ) -> None:
        self.cfg = cfg
        self.username = username
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        self.client.username_pw_set(username, password)
        if cfg.tls:
            self.client.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None, cert_reqs=ssl.CERT_REQUIRED)
        # Every unacknowledged message counts against the queue bound (well under paho's 65,535
        # message ids); with no separate in-flight cap paho skips a scan of its queue per PUBACK.
        self.client.max_queued_messages_set(MAX_QUEUED)
        self.client.max_inflight_messages_set(0)
        if will_topic is not None:
            self.client.will_set(will_topic, topics.STATUS_OFFLINE, qos=1, retain=True)
        self.client.on_socket_open = self._on_open
        self.client.on_socket_close = self._on_close
        self.client.on_socket_register_write = self._on_want_write
        self.client.on_socket_unregister_write = self._on_no_write
        self.client.on_connect = self._on_connect
        self.wanted = False  # should be connected: the misc loop reconnects it
        self._down_since = 0.0
        self._connack: asyncio.Future[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # paho's socket callbacks: hand the socket to the asyncio selector.
    def _on_open(self, client: paho.Client, userdata: object, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock, client.loop_read)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)

    def _on_close(self, client: paho.Client, userdata: object, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._down_since = time.monotonic()

    def _on_want_write(self, client: paho.Client, userdata: object, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_writer(sock, client.loop_write)

    def _on_no_write(self, client: paho.Client, userdata: object, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_writer(sock)

    def _on_connect(self, client: paho.Client, userdata: object, flags: Any, rc: Any, props: Any) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(rc)

    async def connect(self, timeout_s: float = 20.0) -> None:
        """Connect and wait for CONNACK; raise mqtt.ConnectRefused when refused or unreachable."""
        self._loop = asyncio.get_running_loop()
        self._connack = self._loop.create_future()
        try:
            self.client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        except OSError as exc:
            raise mqtt.ConnectRefused(f"broker {self.cfg.host}:{self.cfg.port}: {exc}") from exc
        try:
            rc = await asyncio.wait_for(self._connack, timeout_s)
        except TimeoutError:
            raise mqtt.ConnectRefused(f"{self.username}: no CONNACK within {timeout_s:.0f} s") from None
        if getattr(rc, "is_failure", False):
            raise mqtt.ConnectRefused(f"broker refused {self.username}: {rc}")
        self.wanted = True

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Queue a QoS 1 message; False when the connection's queue is full (the message is dropped)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return info.rc in {paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN}

    def drop(self) -> None:
        """Lose the network: close the socket without DISCONNECT, so the broker publishes our Last Will."""
        self.wanted = False
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            self.client.loop_read()  # paho sees the closed socket and tidies up

    def close(self) -> None:
        self.wanted = False
        if self.client.is_connected():
            self.client.disconnect()

    def tick(self) -> None:
        """Keepalive, retries, and reconnection after an unexpected disconnect (once a second)."""
        self.client.loop_misc()
        down_for = time.monotonic() - self._down_since
        if self.wanted and not self.client.is_connected() and down_for > _RECONNECT_AFTER_S:
            self._down_since = time.monotonic()
            with contextlib.suppress(OSError):
                self.client.reconnect()

    @property
    def queued(self) -> int:
        return len(self.client._out_messages)  # paho has no public accessor for its queue


async def connect_all(links: list[Link], progress: Any = None, batch: int = 200) -> None:
    """Connect ``links`` a batch at a time (the broker hashes a password per connection)."""
    for start in range(0, len(links), batch):
        await asyncio.gather(*(link.connect() for link in links[start:start + batch]))
        if progress is not None:
            progress(min(start + batch, len(links)))


async def serve(links: list[Link], stop: asyncio.Event) -> None:
    """Run every link's periodic work until ``stop`` is set."""
    while not stop.is_set():
        for link in links:
            link.tick()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
