"""Wire the stages together and run one ingest worker until SIGTERM or SIGINT.

MQTT v5 with a persistent session (stable client id ``ingest-<worker>``) on the shared
subscription ``$share/ingest/exam/v1/#``: several workers split the stream, and a worker that
crashes gets its unacknowledged messages again when it reconnects. QoS 1 messages are
acknowledged only after their batch is durable; ``ReceiveMaximum`` bounds what is in flight.
"""

from __future__ import annotations

import logging
import time

import paho.mqtt.client as paho
from prometheus_client import CollectorRegistry, start_http_server

from examwatch import mqtt, topics
from examwatch.influx import Influx, InfluxRejected, InfluxUnavailable
from examwatch.inventory import Inventory
from examwatch.rejects import Reason
from examwatch.settings import Settings
from examwatch.signals import stop_on_signals
from ingest.batch import Batcher
from ingest.decode import Decoder
from ingest.metrics import Stats, StatsCollector
from ingest.spool import Spool
from ingest.writer import Writer

log = logging.getLogger("examwatch.ingest")
SHARE_GROUP = "ingest"


class Ingest:
    def __init__(self, settings: Settings, inventory: Inventory, worker: str) -> None:
        cfg = settings.ingest
        self.settings = settings
        self.worker = worker
        self.stats = Stats()
        self.decoder = Decoder(inventory.devices, cfg.max_payload_bytes, cfg.max_clock_offset_s)
        self.batcher = Batcher(cfg.batch_size, cfg.batch_latency_ms / 1000)
        self.influx = Influx(settings.influx)
        self.spool = Spool(cfg.spool_dir / worker)
        self.client = mqtt.service_client(settings, "ingest", f"ingest-{worker}", manual_ack=True)
        self.writer = Writer(
            self.influx,
            self.spool,
            self.batcher,
            self.stats,
            self._ack,
            cfg.max_batches_in_flight,
            cfg.stats_interval_s,
            lambda: self.stats.stats_line(worker),
        )
        self._stopping = False
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    @property
    def receive_maximum(self) -> int:
        cfg = self.settings.ingest
        return min(65535, cfg.batch_size * (cfg.max_batches_in_flight + 1))

    def _on_connect(self, c: paho.Client, _u: object, flags: paho.ConnectFlags, rc: object, _p: object) -> None:
        if getattr(rc, "is_failure", False):
            log.error("broker refused ingest: %s", rc)
            return
        c.subscribe(f"$share/{SHARE_GROUP}/{topics.ALL}", qos=1)
        log.info("connected (session present: %s)", flags.session_present)

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        if self._stopping:
            return  # not acknowledged: the broker redelivers it to the next session
        self.stats.received += 1
        try:
            line, reason = self.decoder.decode(msg.topic, msg.payload, time.time_ns())
        except Exception as exc:  # a decoder bug must cost one message a record, not the MQTT thread
            log.exception("decoder failed on %s", msg.topic)
            reason = Reason.INTERNAL
            line = self.decoder.reject_line(msg.topic, msg.payload, time.time_ns(), reason, repr(exc))
        if reason is not None:
            self.stats.rejected[reason] += 1
        elif line is None:
            self.stats.service += 1
        full = self.batcher.add(line, msg.mid, msg.qos)
        if full is not None:
            self.writer.submit(full)

    def _ack(self, acks: list[tuple[int, int]]) -> None:
        for mid, qos in acks:
            self.client.ack(mid, qos)

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
        mqtt.connect_and_wait(
            self.client,
            self.settings.mqtt,
            session_expiry_s=self.settings.ingest.session_expiry_s,
            receive_maximum=self.receive_maximum,
        )

    def stop(self) -> None:
        """Stop taking messages, make everything taken durable and acknowledged, then disconnect."""
        self._stopping = True
        self.writer.stop()
        self.client.disconnect()
        self.client.loop_stop()
        s = self.stats
        log.info("stopped: %d received (%d on service topics, not stored), %d points written, %d in spool",
                 s.received, s.service, s.written, len(self.spool))


def run(settings: Settings, inventory: Inventory, worker: str) -> None:
    """Run until SIGTERM/SIGINT, then shut down cleanly."""
    done = stop_on_signals(log, "flushing and stopping")
    ingest = Ingest(settings, inventory, worker)
    ingest.start()
    done.wait()
    ingest.stop()
