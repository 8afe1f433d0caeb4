"""Group points into batches bounded by size and by the age of their oldest point."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Batch:
    lines: list[bytes] = field(default_factory=list)
    acks: list[tuple[int, int]] = field(default_factory=list)  # (mid, session epoch) to acknowledge once durable
    started: float = field(default_factory=time.monotonic)


class Batcher:
    """Thread-safe: the MQTT thread adds, the writer thread takes what is due."""

    def __init__(self, size: int, latency_s: float) -> None:
        self.size = size
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._batch = Batch()

    def add(self, line: bytes | None, mid: int, epoch: int) -> Batch | None:
        """Add one message (``epoch`` 0: QoS 0, nothing to acknowledge); return the batch when it is full."""
        with self._lock:
            b = self._batch
            if not b.lines and not b.acks:
                b.started = time.monotonic()
            if line is not None:
                b.lines.append(line)
            if epoch:
                b.acks.append((mid, epoch))
            if len(b.lines) < self.size:
                return None
            self._batch = Batch()
            return b

    def take(self, force: bool = False) -> tuple[Batch | None, float]:
        """The current batch if it is due (or ``force``), and seconds until the next one may be."""
        with self._lock:
            b = self._batch
            if not b.lines and not b.acks:
                return None, self.latency_s
            wait = b.started + self.latency_s - time.monotonic()
            if wait > 0 and not force:
                return None, wait
            self._batch = Batch()
            return b, self.latency_s
