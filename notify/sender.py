"""The outbox's sending side: a thread per channel (SMS, group-chat robots), most urgent first.

Rows ready to go are sent by severity, then age (the outbox id): with hundreds queued, a new
critical alert goes next. A row becomes ``sent`` in the same transaction that keeps the attempt,
right after the gateway accepted it; a row withdrawn meanwhile (stale, folded into a flood) is
skipped. A per-address sliding window holds back messages beyond ``rate_per_phone`` in
``rate_window_s`` on the clock (robots: ``robot_rate_per_min`` of wall time); a critical first alert or
update to a phone is never held by it. While the gateway is down the whole channel waits behind
one probe, the most urgent row, retried after ``retry_min_s`` doubling up to ``retry_max_s`` (wall
time), so when it returns the queue drains in severity order. Retries are scheduled here rather
than with an in-call retry library, because a waiting message must not block the others.

Exactly once: the id of the row in the gateway's hands is written to a small file first
(:class:`InFlight`). After a SIGKILL that row's outcome is unknown. With delivery reports on, each
SMS carries a ``dlr-url`` naming its row, and the API records Kannel's report in
``notification.delivery``: the row is then taken as sent once a report says the gateway had it,
and sent again only if none came within ``dlr_wait_s``. Without reports (or for a robot) it is
sent again, and the record says its first outcome was unknown.
"""

from __future__ import annotations

import heapq
import itertools
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
from notify.outbox import Queued, rank
from notify.providers import Provider, Result
from notify.roster import ROBOT

log = logging.getLogger("examwatch.notify.sender")
_N, _AT, _H = (cast(sa.Table, m.__table__) for m in (Notification, NotifyAttempt, NotifyHealth))
_S = 1_000_000_000
UNKNOWN = "outcome unknown: the notifier stopped during this send"
#: kept on the row while its delivery report is awaited, so that a second crash meanwhile still knows
AWAITING = "outcome unknown: the notifier stopped during this send; awaiting its delivery report"
CONFIRMED = "sent before the notifier stopped: the gateway's delivery report says so"
#: what a delivery report says when the gateway had the message (not: failed, or none)
HAD_IT = ("delivered", "submitted", "buffered")


class RateLimit:
    """At most ``count`` messages per address in any ``window_s``: ``wait`` says how long until the next may go."""

    def __init__(self, count: int, window_s: float) -> None:
        self.count, self.window_s = count, window_s
        self._sent: dict[str, deque[float]] = defaultdict(deque)

    def wait(self, address: str, now: float) -> float:
        sent = self._sent[address]
        while sent and sent[0] <= now - self.window_s:
            sent.popleft()
        return 0.0 if len(sent) < self.count else sent[0] + self.window_s - now

    def record(self, address: str, now: float) -> None:
        self._sent[address].append(now)


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
    """One channel: ``robots`` False sends the SMS (phones), True the group-chat robots' messages."""

    def __init__(self, store: sa.Engine, provider: Provider, cfg: NotifySettings, clock: Clock = WALL,
                 robots: bool = False) -> None:
        self.store, self.provider, self.cfg, self.clock, self.robots = store, provider, cfg, clock, robots
        channel = "robots" if robots else "sms"
        suffix = "-robots" if robots else ""
        self.inflight = InFlight(cfg.state_dir / f"inflight-{cfg.worker}{suffix}")
        self.limit = RateLimit(cfg.robot_rate_per_min, 60.0) if robots else RateLimit(cfg.rate_per_phone,
                                                                                       cfg.rate_window_s)
        # A phone's window is policy and follows a drill's clock; a robot's is the chat service's
        # own throttle (20 a minute of real time), so it stays on the wall clock.
        self._limit_clock: Clock = WALL if robots else clock
        self._ready: list[tuple[int, int]] = []  # (-rank, id): the most urgent, then the oldest
        self._waiting: list[tuple[float, int, int]] = []  # (wall time due, id, rank)
        self._verify: set[int] = set()  # rows whose send a crash interrupted: look for a delivery report
        self._paused_until = 0.0  # wall time: the gateway is down until a retry then
        self._robot_backoff: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"notify-{channel}", daemon=True)
        self._backoff = 0.0
        self._health_state: tuple[bool, bool] | None = None  # (taken, held by the gateway) last recorded
        self._ticket = itertools.count()
        self.sent = 0

    def mine(self, address: str) -> bool:
        """Whether an outbox address is this channel's."""
        return address.startswith(ROBOT) == self.robots

    def load(self) -> int:
        """Queue every row of this channel not yet sent (after a restart); returns how many.

        The row named in the in-flight file was in the provider's hands when the notifier died.
        With delivery reports it waits ``dlr_wait_s`` for one (see the module's docstring);
        otherwise it is sent again (a duplicate is better than a lost alarm) and that attempt is
        kept as "outcome unknown", so the record shows it.
        """
        unknown = self.inflight.read()
        with writing(self.store) as conn:
            row = conn.execute(sa.select(_N.c.status, _N.c.address).where(_N.c.id == unknown)).first() \
                if unknown else None
            if row is not None and row.status == "queued":
                if self.cfg.delivery_reports and not self.robots:
                    log.warning("notification %d was being sent when the notifier stopped; waiting up to %.0f s "
                                "for its delivery report before sending it again", unknown, self.cfg.dlr_wait_s)
                    conn.execute(sa.update(_N).where(_N.c.id == unknown).values(result=AWAITING))
                else:
                    log.warning("notification %d was being sent when the notifier stopped; sending it again",
                                unknown)
                    self._unknown(conn, unknown)
            rows = conn.execute(sa.select(_N.c.id, _N.c.address, _N.c.severity, _N.c.result)
                                .where(_N.c.status == "queued")).all()
        # Also those a crash before this one left awaiting their report: the in-flight file names one.
        self._verify.update(r.id for r in rows if r.result == AWAITING and self.mine(r.address))
        self.inflight.clear()
        # All due now: a retry's backoff is wall time against a gateway and did not outlive the process.
        now = time.time()
        items = [(r.id, rank(r.severity), r.id in self._verify) for r in rows if self.mine(r.address)]
        with self._lock:
            for nid, r, verify in items:
                heapq.heappush(self._waiting, (now + (self.cfg.dlr_wait_s if verify else 0.0), nid, r))
        self._wake.set()
        return len(items)

    def _unknown(self, conn: sa.Connection, nid: int) -> None:
        conn.execute(sa.insert(_AT).values(notification_id=nid, at_ns=now_ns(self.clock), ok=False, duration_us=0,
                                           result=UNKNOWN))
        conn.execute(sa.update(_N).where(_N.c.id == nid).values(result=UNKNOWN))

    def push(self, items: list[Queued]) -> None:
        """Send these rows (already committed): now, or when their clock time is due."""
        if not items:
            return
        now = time.time()
        with self._lock:
            for q in items:
                at = now if q.due_ns is None else self.clock.wall_at(q.due_ns / _S)
                if at <= now:
                    heapq.heappush(self._ready, (-q.rank, q.id))
                else:
                    heapq.heappush(self._waiting, (at, q.id, q.rank))
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
            return len(self._ready) + len(self._waiting)

    def _next(self, now: float) -> tuple[int, int] | float | None:
        """The most urgent row ready now as (id, rank), or the wall time to wait until, or None (nothing)."""
        with self._lock:
            while self._waiting and self._waiting[0][0] <= now:
                _at, nid, r = heapq.heappop(self._waiting)
                heapq.heappush(self._ready, (-r, nid))
            if self._ready and self._paused_until <= now:
                r, nid = heapq.heappop(self._ready)
                return nid, -r
            wake = [t for t in (self._waiting[0][0] if self._waiting else None,
                                self._paused_until if self._ready else None) if t is not None]
            return min(wake) if wake else None

    def _later(self, nid: int, r: int, at: float) -> None:
        with self._lock:
            heapq.heappush(self._waiting, (at, nid, r))

    def _run(self) -> None:
        while not self._stop.is_set():
            nxt = self._next(time.time())
            if not isinstance(nxt, tuple):
                self._wake.wait(None if nxt is None else max(0.0, nxt - time.time()))
                self._wake.clear()
                continue
            nid, r = nxt
            try:
                self._one(nid, r)
            except sa.exc.OperationalError as exc:  # the store is busy or gone: try this row again shortly
                log.warning("store: %s; retrying notification %d", exc, nid)
                self._later(nid, r, time.time() + 1.0)

    def _one(self, nid: int, r: int) -> None:
        with self.store.connect() as conn:
            row = conn.execute(sa.select(_N.c.address, _N.c.text, _N.c.status, _N.c.kind, _N.c.delivery)
                               .where(_N.c.id == nid)).first()
        if row is None or row.status != "queued":  # sent meanwhile by another worker, withdrawn, or muted
            return
        if nid in self._verify:
            self._verify.discard(nid)
            if self._confirmed(nid, row.delivery):
                return
        limit_now = self._limit_clock.now()
        # A critical first alert (or update) to a phone is never held behind lesser messages by the limit.
        urgent = not self.robots and r >= 4 and row.kind in ("alert", "update")
        wait = 0.0 if urgent else self.limit.wait(row.address, limit_now)
        if wait > 0:
            self._later(nid, r, self._limit_clock.wall_at(limit_now + wait))
            return
        backoff = self._robot_backoff.get(row.address, 0.0)
        if backoff > time.time():
            self._later(nid, r, backoff)
            return
        self.inflight.mark(nid)
        started = time.perf_counter()
        result = self.provider.send(row.address, row.text, nid)
        self._record(nid, r, row.address, result, int((time.perf_counter() - started) * 1e6))

    def _record(self, nid: int, r: int, address: str, result: Result, took_us: int) -> None:
        """Keep the attempt and the row's new status in one transaction, then clear the in-flight mark."""
        at_ns = now_ns(self.clock)
        retry_at = 0.0
        if result.ok:
            self.limit.record(address, self._limit_clock.now())
            self._backoff = 0.0
            self._robot_backoff.pop(address, None)
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
            log.warning("notification %d to %s not sent (%s); retried in %.1f s", nid, address, result.detail,
                        self._backoff)
            if self.robots:  # one robot's trouble is not the others'
                self._robot_backoff[address] = retry_at
                self._later(nid, r, retry_at)
            else:  # the gateway is down for every message alike: all wait behind this one, the most urgent
                with self._lock:
                    self._paused_until = retry_at
                    heapq.heappush(self._ready, (-r, nid))
        else:
            log.error("notification %d to %s refused, not retried: %s", nid, address, result.detail)

    def _confirmed(self, nid: int, delivery: str) -> bool:
        """After a crash: True (and the row marked sent) when a delivery report says the gateway had it."""
        with writing(self.store) as conn:
            if delivery in HAD_IT:
                log.info("notification %d: the delivery report (%s) shows it was sent before the stop; not resent",
                         nid, delivery)
                conn.execute(sa.insert(_AT).values(notification_id=nid, at_ns=now_ns(self.clock), ok=True,
                                                   duration_us=0, result=CONFIRMED))
                conn.execute(sa.update(_N).where(_N.c.id == nid).values(
                    status="sent", sent_ns=now_ns(self.clock), attempts=_N.c.attempts + 1, result=CONFIRMED))
                return True
            log.warning("notification %d: no delivery report within %.0f s of the restart; sending it again", nid,
                        self.cfg.dlr_wait_s)
            self._unknown(conn, nid)
        return False

    def _health(self, result: Result) -> None:
        healthy = result.ok and not result.degraded
        # Down → taken but held (Kannel up, its SMSC link not yet) is news too: the record must not
        # keep saying "connection refused" while the gateway queues.
        state = (result.ok, result.degraded)
        if state == self._health_state:
            return
        self._health_state = state
        detail = "accepting messages" if healthy else result.detail
        (log.info if healthy else log.error)("provider %s: %s", self.provider.name, detail)
        set_health(self.store, self.provider.name, healthy, detail, self.clock)
