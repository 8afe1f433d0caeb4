"""Limit guesses at mobile-page tokens: a client address that sent too many bad ones is refused a while.

A token's MAC is 4 bytes (``examwatch.links``), one guess in four billion for a given
notification; refusing an address after ``limit`` bad or expired tokens in ``window_s`` seconds
makes guessing hopeless. The window is on the service clock, as every decision by time is. The
counts live in this process (one API process serves the page); a restart forgets them.
"""

from __future__ import annotations

import threading
from collections import deque

from examwatch.clock import Clock


class Guesses:
    """Bad tokens per client address over a sliding window."""

    def __init__(self, clock: Clock, limit: int, window_s: float, max_clients: int = 10_000) -> None:
        self.clock, self.limit, self.window_s, self.max_clients = clock, limit, window_s, max_clients
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.setdefault(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked_for(self, client: str) -> float:
        """Clock seconds until ``client`` may try again (0: it may now)."""
        now = self.clock.now()
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.limit:
                return 0.0
            return max(0.0, times[len(times) - self.limit] + self.window_s - now)

    def failed(self, client: str) -> None:
        """``client`` sent a bad token."""
        now = self.clock.now()
        with self._lock:
            if client not in self._seen and len(self._seen) >= self.max_clients:
                # Forget the quietest addresses first: whoever is guessing keeps being counted.
                for key in sorted(self._seen, key=lambda k: self._seen[k][-1] if self._seen[k] else 0)[:1000]:
                    del self._seen[key]
            self._recent(client, now).append(now)
