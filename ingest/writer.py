"""Make each batch durable, in InfluxDB or in the spool, and only then acknowledge it.

One thread does all writing, so order is simple to keep: while the spool holds anything, new
batches go behind it, and the spool is replayed oldest first. InfluxDB being down costs disk,
never data; it is retried with backoff (0.5 s doubling to 10 s) without delaying the spooling
of new batches.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from examwatch.influx import Influx, InfluxRejected, InfluxUnavailable
from ingest.batch import Batch, Batcher
from ingest.metrics import Stats
from ingest.spool import Spool

log = logging.getLogger("examwatch.ingest")

Ack = Callable[[list[tuple[int, int]]], None]
_STOP = Batch()
_BACKOFF_MIN_S = 0.5
_BACKOFF_MAX_S = 10.0


class Writer:
    def __init__(
        self,
        influx: Influx,
        spool: Spool,
        batcher: Batcher,
        stats: Stats,
        ack: Ack,
        max_batches_in_flight: int,
        stats_every_s: float,
        stats_line: Callable[[], bytes],
    ) -> None:
        self.influx = influx
        self.spool = spool
        self.batcher = batcher
        self.stats = stats
        self.ack = ack
        self.full: queue.Queue[Batch] = queue.Queue(maxsize=max_batches_in_flight)
        self._backoff = _BACKOFF_MIN_S
        self._retry_at = 0.0
        self._stats_every = stats_every_s
        self._stats_line = stats_line
        self._next_stats = time.monotonic() + stats_every_s
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._stopped = False
        self.stats.spool_depth = len(spool)

    def start(self) -> None:
        self._thread.start()

    def submit(self, batch: Batch) -> None:
        """Queue a full batch; blocks while too many are waiting (back-pressure on the MQTT thread).

        After ``stop`` a batch is dropped unacknowledged: the broker redelivers it to the next session."""
        while not self._stopped:
            try:
                self.full.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue

    def stop(self) -> None:
        """Write what is queued and what the batcher holds, acknowledge it, and end the thread."""
        self.full.put(_STOP)
        self._thread.join()
        self._stopped = True

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            # A writer that cannot write (disk full, a bug) must not leave a process that looks
            # alive but acknowledges nothing: exit, and let the supervisor restart us. Everything
            # unacknowledged is redelivered, exactly as after a SIGKILL.
            log.critical("writer failed; exiting so unacknowledged messages are redelivered", exc_info=True)
            os._exit(70)

    def _loop(self) -> None:
        wait = self.batcher.latency_s
        while True:
            if len(self.spool) and time.monotonic() >= self._retry_at:
                wait = 0.0  # a backlog to replay and InfluxDB worth trying: do not idle
            try:
                batch: Batch | None = self.full.get(timeout=max(wait, 0.001))
            except queue.Empty:
                batch = None
            if batch is _STOP:
                self._flush_all()
                return
            if batch is None:
                batch, wait = self.batcher.take()
            if batch is not None:
                self._deliver(batch)
            self._tick()

    def _flush_all(self) -> None:
        while True:
            try:
                batch = self.full.get_nowait()
            except queue.Empty:
                break
            if batch is not _STOP:
                self._deliver(batch)
        last, _ = self.batcher.take(force=True)
        if last is not None:
            self._deliver(last)
        self._drain(deadline=time.monotonic() + 5.0)

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_stats:
            self._next_stats = now + self._stats_every
            self.batcher.add(self._stats_line(), 0, 0)
        if len(self.spool) and now >= self._retry_at:
            # Drain for at most half a batch latency, so new batches are not held up.
            self._drain(deadline=now + self.batcher.latency_s / 2)

    def _deliver(self, batch: Batch) -> None:
        if batch.lines:
            body = b"\n".join(batch.lines)
            if len(self.spool):
                self._spool(body)
            else:
                try:
                    self._write(body, len(batch.lines))
                except InfluxUnavailable as exc:
                    log.warning("InfluxDB unavailable, spooling: %s", exc)
                    self._spool(body)
                    self._failed()
                except InfluxRejected as exc:
                    self._bury(body, exc)
        if batch.acks:
            self.ack(batch.acks)

    def _write(self, body: bytes, points: int) -> None:
        t0 = time.perf_counter()
        try:
            result = self.influx.write(body)
        except InfluxUnavailable:
            self.stats.write_errors += 1
            raise
        finally:
            self.stats.write_seconds += time.perf_counter() - t0
            self.stats.writes += 1
        if result.dropped:
            log.error("InfluxDB dropped %d points of a batch: %s", result.dropped, result.detail)
        self.stats.dropped += result.dropped
        self.stats.written += points - result.dropped

    def _spool(self, body: bytes) -> None:
        self.spool.put(body)
        self.stats.spooled += 1
        self.stats.spool_depth = len(self.spool)

    def _bury(self, body: bytes, exc: Exception, path: Path | None = None) -> None:
        dead = self.spool.bury(body, path)
        self.stats.dead += 1
        self.stats.spool_depth = len(self.spool)
        log.error("InfluxDB refused a batch as malformed; kept in %s: %s", dead, exc)

    def _failed(self) -> None:
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX_S)

    def _drain(self, deadline: float) -> None:
        replayed = 0
        while time.monotonic() < deadline:
            oldest = self.spool.oldest()
            if oldest is None:
                self._backoff = _BACKOFF_MIN_S
                if replayed:
                    log.info("spool drained: InfluxDB has every spooled batch")
                return
            path, body = oldest
            try:
                self._write(body, body.count(b"\n") + 1)
            except InfluxUnavailable:
                self._failed()
                return
            except InfluxRejected as exc:
                self._bury(body, exc, path)
                continue
            self.spool.remove(path)
            replayed += 1
            self.stats.spool_depth = len(self.spool)
