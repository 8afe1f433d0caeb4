"""Wire the stages together and run one ingest worker until SIGTERM or SIGINT.

MQTT v5 with a persistent session (stable client id ``ingest-<worker>``) on the shared
subscription ``$share/ingest/exam/v1/#``: several workers split the stream, and a worker that
crashes gets its unacknowledged messages again when it reconnects. QoS 1 messages are
acknowledged only after their batch is durable; ``ReceiveMaximum`` bounds what is in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, start_http_server

from examwatch import credentials, topics
from examwatch.clock import ns_reader
from examwatch.compact import CompactInventory
from examwatch.influx import Influx, InfluxRejected, InfluxUnavailable
from examwatch.rejects import Reason
from examwatch.settings import Settings
from examwatch.signals import stop_on_signals
from examwatch.subscriber import Subscriber
from ingest.batch import Batcher
from ingest.decode import Decoder
from ingest.metrics import Stats, StatsCollector
from ingest.spool import Spool
from ingest.writer import Writer

log = logging.getLogger("examwatch.ingest")
SHARE_GROUP = "ingest"


class Ingest:
    def __init__(self, settings: Settings, inventory: CompactInventory, worker: str) -> None:
        cfg = settings.ingest
        self.settings = settings
        self.worker = worker
        self.stats = Stats()
        clock = settings.clock.make()
        # Receive times on the settings' clock: in a compressed drill device times are the drill's.
        self.now_ns: Callable[[], int] = ns_reader(clock)
        self.decoder = Decoder(inventory, cfg.max_payload_bytes, cfg.max_clock_offset_s, inventory.sites)
        self.batcher = Batcher(cfg.batch_size, cfg.batch_latency_ms / 1000)
        self.influx = Influx(settings.influx)
        self.spool = Spool(cfg.spool_dir / worker)
        user = credentials.service_user("ingest")
        self.source = Subscriber(
            settings.mqtt,
            f"ingest-{worker}",
            user,
            credentials.password(settings.secret.get_secret_value(), user),
            f"$share/{SHARE_GROUP}/{topics.ALL}",
            self._on_message,
            session_expiry_s=cfg.session_expiry_s,
            receive_maximum=self.receive_maximum,
            now_ns=self.now_ns,
        )
        self.writer = Writer(
            self.influx,
            self.spool,
            self.batcher,
            self.stats,
            self.source.ack,
            cfg.max_batches_in_flight,
            cfg.stats_interval_s,
            lambda: self.stats.stats_line(worker),
        )
        self._stopping = False

    @property
    def receive_maximum(self) -> int:
        cfg = self.settings.ingest
        return min(65535, cfg.batch_size * (cfg.max_batches_in_flight + 1))

    def _on_message(self, topic: bytes, payload: bytes, mid: int, epoch: int, recv_ns: int, _dup: bool) -> None:
        if self._stopping:
            return  # not acknowledged: the broker redelivers it to the next session
        self.stats.received += 1
        try:
            line, reason = self.decoder.decode(topic, payload, recv_ns)
        except Exception as exc:  # a decoder bug must cost one message a record, not the MQTT thread
            name = topic.decode("utf-8", errors="replace")
            log.exception("decoder failed on %s", name)
            reason = Reason.INTERNAL
            line = self.decoder.reject_line(name, payload, self.now_ns(), reason, repr(exc))
        if reason is not None:
            self.stats.rejected[reason] += 1
        elif line is None:
            self.stats.service += 1
        full = self.batcher.add(line, mid, epoch)
        if full is not None and not self._stopping:
            self.writer.submit(full)

    def start(self) -> None:
        if self.settings.influx.create_database:
            try:
                self.influx.create_database()
            except (InfluxUnavailable, InfluxRejected) as exc:
                log.warning("cannot create database yet (%s); points will be spooled until InfluxDB answers", exc)
        port = self.settings.ingest.metrics_port
        if port:
            registry = CollectorRegistry()
            registry.register(StatsCollector(self.stats, self.worker))
            start_http_server(port, self.settings.ingest.metrics_host, registry)
        self.writer.start()
        self.source.connect()

    def stop(self) -> None:
        """Stop taking messages, make everything taken durable and acknowledged, then disconnect."""
        self._stopping = True
        self.writer.stop()
        self.source.close()
        s = self.stats
        log.info("stopped: %d received (%d on service topics, not stored), %d points written, %d in spool",
                 s.received, s.service, s.written, len(self.spool))


def run(settings: Settings, inventory: CompactInventory, worker: str) -> None:
    """Run until SIGTERM/SIGINT, then shut down cleanly."""
    done = stop_on_signals(log, "flushing and stopping")
    ingest = Ingest(settings, inventory, worker)
    ingest.start()
    done.wait()
    ingest.stop()
