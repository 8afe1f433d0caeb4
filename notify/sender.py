"""The outbox's sending side: a thread with a heap of due notifications, one provider call at a time.

Rows are sent in the order they come due. A row becomes ``sent`` in the same transaction that
keeps the attempt, right after the gateway accepted it. A crash while the provider holds a
message (the call itself, about a millisecond) leaves its outcome unknown: it is sent again on
restart and recorded so (see :class:`InFlight`); every other message goes exactly once.
While the gateway is down the whole queue waits behind one probe message, retried after
``retry_min_s`` doubling up to ``retry_max_s``; a per-phone sliding window
holds back messages beyond ``rate_per_phone`` in ``rate_window_s``. Retries are scheduled on
the heap rather than with an in-call retry library, because a waiting message must not block
the others and must survive a restart (its ``next_try_ns`` is in the store).
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import cast

import sqlalchemy as sa

from examwatch.clock import WALL, Clock, now_ns
from examwatch.settings import NotifySettings
from examwatch.store import writing
from examwatch.store.notify_models import Notification, NotifyAttempt, NotifyHealth
from notify.providers import Provider, Result

log = logging.getLogger("examwatch.notify.sender")
_N, _AT, _H = (cast(sa.Table, m.__table__) for m in (Notification, NotifyAttempt, NotifyHealth))
_S = 1_000_000_000
UNKNOWN = "outcome unknown: the notifier stopped during this send"


class RateLimit:
    """At most ``count`` messages per phone in any ``window_s``: ``wait`` says how long until the next may go."""

    def __init__(self, count: int, window_s: float) -> None:
        self.count, self.window_s = count, window_s
        self._sent: dict[str, deque[float]] = defaultdict(deque)

    def wait(self, phone: str, now: float) -> float:
        sent = self._sent[phone]
        while sent and sent[0] <= now - self.window_s:
            sent.popleft()
        return 0.0 if len(sent) < self.count else sent[0] + self.window_s - now

    def record(self, phone: str, now: float) -> None:
        self._sent[phone].append(now)


def set_health(store: sa.Engine, provider: str, ok: bool, detail: str, clock: Clock = WALL) -> None:
    """Record the provider's health for ``examwatch notify status`` and the API."""
    with writing(store) as conn:
        conn.execute(sa.delete(_H).where(_H.c.provider == provider))
        conn.execute(sa.insert(_H).values(provider=provider, ok=ok, detail=detail[:500], at_ns=now_ns(clock)))


class InFlight:
    """The id of the notification in the provider's hands, in a small file of this worker's.

    Written before each call and cleared after its result is committed: a plain ``pwrite``, no
    store transaction, so it adds no lock wait to the alarm path, and it survives a SIGKILL
    (the kernel has it). A power cut can lose it; then the message is resent without the record
    saying its first outcome was unknown.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def mark(self, nid: int) -> None:
        os.pwrite(self._fd, f"{nid:>20}\n".encode(), 0)

    def clear(self) -> None:
        self.mark(0)

    def read(self) -> int:
        text = os.pread(self._fd, 21, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else 0

    def close(self) -> None:
        os.close(self._fd)


class Sender:
    def __init__(self, store: sa.Engine, provider: Provider, cfg: NotifySettings, clock: Clock = WALL) -> None:
        self.store, self.provider, self.cfg, self.clock = store, provider, cfg, clock
        self.inflight = InFlight(cfg.state_dir / f"inflight-{cfg.worker}")
        self.limit = RateLimit(cfg.rate_per_phone, cfg.rate_window_s)
        self._heap: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-sender", daemon=True)
        self._backoff = 0.0
        self._healthy: bool | None = None
        self.sent = 0

    def load(self) -> int:
        """Queue every row not yet sent (after a restart); returns how many.

        The row named in the in-flight file was in the provider's hands when the notifier died:
        whether the gateway took it is unknown, and it is sent again (a duplicate is better than
        a lost alarm). That attempt is kept as "outcome unknown", so the record shows it.
        """
        unknown = self.inflight.read()
        with writing(self.store) as conn:
            status = conn.execute(sa.select(_N.c.status).where(_N.c.id == unknown)).scalar() if unknown else None
            if status == "queued":
                log.warning("notification %d was being sent when the notifier stopped; sending it again", unknown)
                conn.execute(sa.insert(_AT).values(notification_id=unknown, at_ns=now_ns(self.clock), ok=False,
                                                   duration_us=0, result=UNKNOWN))
                conn.execute(sa.update(_N).where(_N.c.id == unknown).values(result=UNKNOWN))
            rows = conn.execute(sa.select(_N.c.id).where(_N.c.status == "queued")).all()
        self.inflight.clear()
        # All due now: a retry's backoff is wall time against a gateway and did not outlive the process.
        now = time.time()
        with self._lock:
            for r in rows:
                heapq.heappush(self._heap, (now, r.id))
        return len(rows)

    def push(self, ids: list[int], at_s: float | None = None) -> None:
        """Send these rows (already committed) from wall time ``at_s`` on (default now)."""
        if not ids:
            return
        when = at_s if at_s is not None else time.time()
        with self._lock:
            for i in ids:
                heapq.heappush(self._heap, (when, i))
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(30)
        self.inflight.close()

    def pending(self) -> int:
        with self._lock:
            return len(self._heap)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            with self._lock:
                due = self._heap[0] if self._heap else None
                if due is not None and due[0] <= now:
                    heapq.heappop(self._heap)
            if due is None or due[0] > now:
                self._wake.wait(None if due is None else due[0] - now)
                self._wake.clear()
                continue
            try:
                self._one(due[1], now)
            except sa.exc.OperationalError as exc:  # the store is busy or gone: try this row again shortly
                log.warning("store: %s; retrying notification %d", exc, due[1])
                self.push([due[1]], time.time() + 1.0)

    def _one(self, nid: int, now: float) -> None:
        with self.store.connect() as conn:
            row = conn.execute(sa.select(_N.c.address, _N.c.text, _N.c.status).where(_N.c.id == nid)).first()
        if row is None or row.status != "queued":  # sent meanwhile by another worker, or muted
            return
        # The per-phone window is judged on the clock (a drill compresses it with everything else).
        clock_now = self.clock.now()
        wait = self.limit.wait(row.address, clock_now)
        if wait > 0:
            self.push([nid], self.clock.wall_at(clock_now + wait))
            return
        self.inflight.mark(nid)
        started = time.perf_counter()
        result = self.provider.send(row.address, row.text)
        took_us = int((time.perf_counter() - started) * 1e6)
        at_ns = now_ns(self.clock)
        if result.ok:
            self.limit.record(row.address, at_ns / _S)
            self._backoff = 0.0
            values: dict[str, object] = {"status": "sent", "sent_ns": at_ns}
        elif result.retry:
            self._backoff = min(max(self._backoff * 2, self.cfg.retry_min_s), self.cfg.retry_max_s)
            retry_at = time.time() + self._backoff  # wall time: the gateway's recovery does not follow a drill
            values = {"status": "queued", "next_try_ns": at_ns + int(self._backoff * self.clock.speed * _S)}
        else:
            values = {"status": "failed"}
        with writing(self.store) as conn:
            conn.execute(sa.insert(_AT).values(notification_id=nid, at_ns=at_ns, ok=result.ok, duration_us=took_us,
                                               result=result.detail[:500]))
            conn.execute(sa.update(_N).where(_N.c.id == nid)
                         .values(attempts=_N.c.attempts + 1, result=result.detail[:500], **values))
        self.inflight.clear()
        self._health(result)
        if result.ok:
            self.sent += 1
        elif result.retry:
            log.warning("notification %d to %s not sent (%s); gateway retried in %.1f s", nid, row.address,
                        result.detail, self._backoff)
            # The whole queue waits behind this one: the gateway is down for every message alike.
            self._delay_all(retry_at)
            self.push([nid], retry_at)
        else:
            log.error("notification %d to %s refused, not retried: %s", nid, row.address, result.detail)

    def _delay_all(self, until: float) -> None:
        with self._lock:
            self._heap = [(max(at, until), i) for at, i in self._heap]
            heapq.heapify(self._heap)

    def _health(self, result: Result) -> None:
        healthy = result.ok and not result.degraded
        if healthy == self._healthy:
            return
        self._healthy = healthy
        detail = "accepting messages" if healthy else result.detail
        (log.info if healthy else log.error)("provider %s: %s", self.provider.name, detail)
        set_health(self.store, self.provider.name, healthy, detail, self.clock)
