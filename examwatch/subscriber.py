"""The services' MQTT source: a persistent-session MQTT v5 subscriber that acknowledges only when told.

Ingest and the rules engine read every telemetry message of the district through it.

Hand-written rather than paho-mqtt because of what paho costs per message: draining the same
50,000-message QoS 1 backlog from Mosquitto took paho (MQTT v5, manual acks) 44–46 µs of CPU per
message and this reader 2.5–3.2 µs (BENCHMARKS.md, "Lean ingest"). paho reads each packet with
three or four ``recv`` calls and builds a message object, a properties object and a callback
frame for it; this reader takes up to 256 KiB per ``recv`` and walks the PUBLISH packets in
place. It speaks only what a QoS 1 subscriber needs (``examwatch.mqttwire``): CONNECT with a
session expiry and a receive maximum, one QoS 1 subscription, PUBACK on request, keep-alive,
DISCONNECT; with TLS when the settings say so.

Threads: one thread owns the socket. It reads, calls ``on_message(topic, payload, mid, epoch,
recv_ns, dup)`` for each PUBLISH (``dup``: MQTT's DUP flag, set on a redelivery), sends the
acknowledgements other threads queue with ``ack()`` and pings when idle. It reconnects by itself
(0.5 s doubling to 10 s) with the same client id, so the broker redelivers what was not
acknowledged. ``epoch`` tags each message with its session: when the broker did not keep the
session, acknowledgements for the old one are dropped, since their packet ids may now name other
messages; the broker redelivers nothing of a lost session, and the points already taken are
written all the same.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

from examwatch import mqttwire as wire
from examwatch.settings import MqttSettings

log = logging.getLogger("examwatch.mqtt")

OnMessage = Callable[[bytes, bytes, int, int, int, bool], None]
_CHUNK = 256 * 1024
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.5, 10.0


class ConnectionLost(Exception):
    """The connection ended (closed, reset, timed out, or the broker disconnected us)."""


class Refused(Exception):
    """The broker refused the connection (credentials, authorisation) or could not be reached."""


class Subscriber:
    """One MQTT v5 session subscribed to ``topic_filter`` at QoS 1; see the module docstring."""

    def __init__(self, cfg: MqttSettings, client_id: str, username: str, password: str, topic_filter: str,
                 on_message: OnMessage, *, session_expiry_s: int, receive_maximum: int,
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        """``now_ns``: the receive clock (a drill clock in a compressed drill, where device times are
        the drill's and would otherwise look days off)."""
        self.cfg = cfg
        self._now_ns = now_ns
        self.client_id = client_id
        self._credentials = (username, password)
        self.topic_filter = topic_filter
        self.on_message = on_message
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.keepalive_s = cfg.keepalive_s
        #: the session's number: it changes when the broker did not keep the session
        self.epoch = 1
        self._sock: socket.socket | None = None
        self._rest = b""  # bytes read after CONNACK while connecting
        self._acks: list[tuple[int, int]] = []
        self._acks_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._closing = False
        self._sent_at = 0.0  # when we last sent anything: keep-alive counts from there
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{client_id}", daemon=True)
        self._ssl = self._tls_context() if cfg.tls else None

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.cfg.ca_file) if self.cfg.ca_file else None)
        ctx.check_hostname = True
        return ctx

    # -- the caller's side ------------------------------------------------------------------------

    def connect(self, timeout_s: float = 10.0) -> bool:
        """Connect and subscribe, then start the socket's thread; the session-present flag.

        Raises ``Refused`` when the broker refuses us or cannot be reached."""
        try:
            present = self._open(timeout_s)
        except (OSError, ConnectionLost, wire.MalformedPacket) as exc:
            raise Refused(f"broker {self.cfg.host}:{self.cfg.port}: {exc}") from exc
        self._thread.start()
        return present

    def ack(self, acks: list[tuple[int, int]]) -> None:
        """Queue PUBACKs for ``(mid, epoch)`` pairs (epoch 0: a QoS 0 message, nothing to send)."""
        with self._acks_lock:
            first = not self._acks
            self._acks += acks
        if first:
            with contextlib.suppress(BlockingIOError):  # already woken
                self._wake_w.send(b"\0")

    def close(self, timeout_s: float = 10.0) -> None:
        """Send the acknowledgements queued so far, disconnect (the session stays) and stop."""
        self._closing = True
        with contextlib.suppress(BlockingIOError):
            self._wake_w.send(b"\0")
        self._thread.join(timeout_s)

    # -- the socket's thread ----------------------------------------------------------------------

    def _open(self, timeout_s: float) -> bool:
        sock = socket.create_connection((self.cfg.host, self.cfg.port), timeout=timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=self.cfg.host)
            user, password = self._credentials
            sock.sendall(wire.connect(self.client_id, user, password, self.cfg.keepalive_s, clean_start=False,
                                      session_expiry_s=self.session_expiry_s, receive_maximum=self.receive_maximum))
            buf = b""
            while True:
                if len(buf) >= 2 and (got := wire.read_varint(buf, 1)) is not None and len(buf) >= sum(got):
                    length, start = got
                    break
                data = sock.recv(_CHUNK)
                if not data:
                    raise ConnectionLost("closed before CONNACK")
                buf += data
            if buf[0] != wire.CONNACK:
                raise wire.MalformedPacket(f"expected CONNACK, got packet type 0x{buf[0]:02X}")
            ack = wire.parse_connack(buf[start:start + length])
            if ack.reason >= 0x80:
                raise Refused(f"broker {self.cfg.host}:{self.cfg.port} refused the connection: "
                              f"{wire.reason_text(ack.reason)}")
            sock.sendall(wire.subscribe(1, self.topic_filter, 1))
        except BaseException:
            sock.close()
            raise
        sock.settimeout(max(self.cfg.keepalive_s, 10))  # sends and a TLS record's remainder; reads wait in select
        if not ack.session_present:
            self.epoch += 1
            with self._acks_lock:
                self._acks.clear()
        self.keepalive_s = ack.server_keepalive or self.cfg.keepalive_s
        self._sock, self._rest = sock, buf[start + length:]
        log.info("connected (session present: %s)", ack.session_present)
        return ack.session_present

    def _run(self) -> None:
        backoff = _BACKOFF_MIN_S
        while True:
            try:
                self._serve()
            except (OSError, ConnectionLost, wire.MalformedPacket) as exc:
                if not self._closing:
                    log.warning("connection to the broker lost: %s", exc)
            self._drop_socket()
            if self._closing:
                return
            while not self._closing:
                time.sleep(backoff)
                try:
                    self._open(10.0)
                    backoff = _BACKOFF_MIN_S
                    break
                except (OSError, ConnectionLost, wire.MalformedPacket, Refused) as exc:
                    log.warning("reconnect failed (next try in %.1f s): %s", min(backoff * 2, _BACKOFF_MAX_S), exc)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _drop_socket(self) -> None:
        if self._sock is not None:
            if self._closing:
                with contextlib.suppress(OSError):
                    self._send_acks()
                    self._sock.sendall(wire.DISCONNECT_PACKET)
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _send_acks(self) -> None:
        with self._acks_lock:
            acks, self._acks = self._acks, []
        epoch = self.epoch
        mids = [mid for mid, e in acks if e == epoch]
        if mids and self._sock is not None:
            self._sock.sendall(wire.pubacks(mids))
            self._sent_at = time.monotonic()

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        tls = isinstance(sock, ssl.SSLSocket)
        view = memoryview(bytearray(_CHUNK))
        buf, self._rest = self._rest, b""
        self._sent_at = now = time.monotonic()
        heard_at, ping_at = now, 0.0
        if buf:
            buf = buf[self._parse(buf, self._now_ns()):]
        while not self._closing:
            if self._acks:
                self._send_acks()
            now = time.monotonic()
            if not ping_at and now - self._sent_at >= self.keepalive_s:
                sock.sendall(wire.PINGREQ_PACKET)
                self._sent_at = ping_at = now
            if ping_at and heard_at < ping_at and now - ping_at >= self.keepalive_s:
                raise ConnectionLost(f"no answer to a ping within {self.keepalive_s:.0f} s")
            if tls and sock.pending():  # type: ignore[attr-defined]  # bytes decrypted, not in the socket
                readable = [sock]
            else:
                wait = max(0.0, (ping_at or self._sent_at) + self.keepalive_s - now)
                readable = select.select([sock, self._wake_r], [], [], wait)[0]
            if self._wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(4096)
            if sock in readable:
                # into one buffer kept for the connection: a fresh 256 KiB object per read, shrunk
                # to what came, leaves holes in the heap that a long run pays for in RSS
                got = sock.recv_into(view)
                if not got:
                    raise ConnectionLost("closed by the broker")
                data = bytes(view[:got])
                heard_at, ping_at = time.monotonic(), 0.0
                buf = buf + data if buf else data
                buf = buf[self._parse(buf, self._now_ns()):]

    def _parse(self, buf: bytes, recv_ns: int) -> int:
        """Handle every whole packet in ``buf``; the number of bytes used."""
        n, pos = len(buf), 0
        handle, epoch = self.on_message, self.epoch
        while pos + 2 <= n:
            head, b = buf[pos], buf[pos + 1]
            if b < 0x80:
                i, end = pos + 2, pos + 2 + b
            elif pos + 2 < n and buf[pos + 2] < 0x80:  # 128 B to 16 KiB: most telemetry
                i = pos + 3
                end = i + ((b & 0x7F) | (buf[pos + 2] << 7))
            else:
                i, end = _extent(buf, pos)
            if end > n:
                break
            if head & 0xF0 == wire.PUBLISH:
                j = i + 2 + ((buf[i] << 8) | buf[i + 1])
                topic = buf[i + 2:j]
                if head & 0x06:  # QoS 1 (the subscription caps it at 1)
                    mid, e = (buf[j] << 8) | buf[j + 1], epoch
                    j += 2
                else:
                    mid, e = 0, 0
                plen = buf[j]
                if plen < 0x80:
                    j += 1 + plen
                else:
                    got = wire.read_varint(buf, j)
                    if got is None:
                        raise wire.MalformedPacket("truncated PUBLISH properties")
                    j = got[1] + got[0]
                handle(topic, buf[j:end], mid, e, recv_ns, bool(head & 0x08))
            else:
                self._control(head, buf[i:end])
            pos = end
        return pos

    def _control(self, head: int, body: bytes) -> None:
        kind = head & 0xF0
        if kind == wire.SUBACK:
            refused = [c for c in wire.parse_suback(body) if c >= 0x80]
            if refused:
                log.error("the broker refused the subscription to %s: %s", self.topic_filter,
                          wire.reason_text(refused[0]))
        elif kind == wire.DISCONNECT:
            raise ConnectionLost(f"the broker disconnected us: {wire.reason_text(wire.parse_disconnect(body))}")
        elif kind not in (wire.PINGRESP, wire.CONNACK):
            log.debug("ignored packet type 0x%02X", head)


def _extent(buf: bytes, pos: int) -> tuple[int, int]:
    """Where the body of the packet at ``pos`` starts and ends; past ``len(buf)`` while incomplete."""
    got = wire.read_varint(buf, pos + 1)
    if got is None:
        return len(buf), len(buf) + 1
    return got[1], got[1] + got[0]
