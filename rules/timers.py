"""A heap of deadlines: absence, pending alarms that fire after their ``for``.

Rules keep at most one entry per subject and re-check when it comes due (a device heard since
gets a new deadline then), so the heap holds about one entry per device, not one per message.
"""

from __future__ import annotations

import heapq
import itertools


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, str]] = []
        self._order = itertools.count()

    def schedule(self, at_s: float, rule: str, subject: str) -> None:
        heapq.heappush(self._heap, (at_s, next(self._order), rule, subject))

    def next_at(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[tuple[str, str]]:
        """(rule, subject) of every entry due at ``now``, earliest first."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, _, rule, subject = heapq.heappop(self._heap)
            out.append((rule, subject))
        return out

    def __len__(self) -> int:
        return len(self._heap)
