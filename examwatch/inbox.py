"""A service's inbox: MQTT callbacks put messages in, the service's loop takes them in batches.

Not ``queue.SimpleQueue``: its ``get(timeout=...)`` can block until the next ``put`` when a
signal (SIGTERM, SIGHUP, SIGUSR1) interrupts it near its deadline, because CPython takes the
remaining time, gone negative, as "wait forever". On a quiet stream the loop then neither fires
its timers nor stops on SIGTERM. ``threading.Event.wait`` recomputes its deadline correctly, and
the producer pays for the event only when the consumer is about to wait.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """Many producers, one consumer."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._ready = threading.Event()

    def put(self, item: T) -> None:
        self._items.append(item)
        if not self._ready.is_set():
            self._ready.set()

    def take(self, wait_s: float, most: int) -> list[T]:
        """Up to ``most`` items, oldest first, waiting up to ``wait_s`` for the first."""
        if not self._items:
            self._ready.clear()
            if not self._items:  # a put between the check and the clear is seen here
                self._ready.wait(max(wait_s, 0.0))
        taken: list[T] = []
        pop = self._items.popleft
        while self._items and len(taken) < most:
            taken.append(pop())
        return taken
