"""Send alarm transitions and readiness roll-ups: MQTT at once, InfluxDB on its own thread.

The path of an alarm to a phone is: commit → MQTT → notifier. So what the engine commits is
handed here from memory (``send``) the moment its transaction commits, and published at once by
the MQTT thread, retained at QoS 1 on ``exam/v1/_alarm/{site}/{rule}/{subject}`` (readiness on
``exam/v1/_readiness/{site}``). The InfluxDB thread writes the same rows on its own queue, so an
InfluxDB outage or a slow write never delays MQTT. A row is marked sent in the store once both
took it (the engine's next transaction records it: ``mark_sent``), so after a crash what was
committed and not marked is sent again: the InfluxDB point has the same series and nanosecond
time and overwrites itself, and MQTT consumers tell a repeat by ``transition_id`` (alarm id and
seq).

A poll of the store (``poll_s``) finds what the engine did not hand over: rows committed before a
restart and not marked sent, and transitions written by other processes (acknowledgements through
the API or the CLI; the API publishes those itself at once, and consumers apply a seq once). A
polled transition older than one already published for its alarm is not published again on MQTT:
the retained message must stay the alarm's latest step.

``alarm`` schema (the dashboards build on it): tags rule, severity, site, subject,
subject_type, drill (only when true); fields state, active, message, alarm_id.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any, cast

import sqlalchemy as sa

from examwatch import lineproto, topics
from examwatch.alarm import AlarmTransition
from examwatch.inbox import Inbox
from examwatch.influx import Influx, InfluxRejected, InfluxUnavailable
from examwatch.store import Alarm, Readiness, Transition, writing
from examwatch.store.lifecycle import MESSAGE_COLUMNS, row_message
from rules.engine import Committed, ReadinessKey, TransitionKey, mark_sent

log = logging.getLogger("examwatch.rules.outbox")
_A, _T, _R = (
    cast(sa.Table, Alarm.__table__),
    cast(sa.Table, Transition.__table__),
    cast(sa.Table, Readiness.__table__),
)
#: publish retained at QoS 1; returns a call that waits for the broker's PUBACK
Publish = Callable[[str, bytes], Callable[[], None]]
MarkSent = Callable[[list[TransitionKey], list[ReadinessKey]], None]
Key = tuple[Any, ...]  # a TransitionKey or a ReadinessKey
RETRY_MAX_S = 10.0


def readiness_topic(site: str) -> str:
    return f"{topics.ROOT}/_readiness/{site}"


def alarm_line(t: AlarmTransition) -> bytes:
    tags = (
        f",rule={lineproto.escape_tag(t.rule)},severity={t.severity.value},site={lineproto.escape_tag(t.site)}"
        f",subject={lineproto.escape_tag(t.subject)},subject_type={t.subject_type.value}"
    )
    if t.drill:
        tags += ",drill=true"
    fields = (
        f"state={lineproto.quote(t.state.value)},active={lineproto.value(t.active)},"
        f"message={lineproto.quote(t.message)},alarm_id={t.alarm_id}i"
    )
    return lineproto.line("alarm", tags, fields, t.at_ns)


def readiness_line(m: Any) -> bytes:
    tags = (
        f",paper={lineproto.escape_tag(m['paper'])},room={lineproto.escape_tag(m['room'])},site={m['site']}"
    )
    if m["drill"]:
        tags += ",drill=true"
    return lineproto.line(
        "readiness",
        tags,
        f"go={lineproto.value(bool(m['go']))},detail={lineproto.quote(m['detail'])}",
        m["at_ns"],
    )


def readiness_key(m: Any) -> ReadinessKey:
    return m["paper"], m["site"], m["room"], m["at_ns"]


def readiness_payload(site: str, rows: list[Any]) -> bytes:
    """One site's readiness message: the site roll-up and its rooms. ``state`` is ``waiting``
    while devices are still unheard since the engine started, else ``go`` or ``no-go``."""
    site_row = next((m for m in rows if m["room"] == "_site"), rows[-1])
    waiting = str(site_row["detail"]).startswith("waiting:")
    return json.dumps(
        {
            "site": site,
            "paper": site_row["paper"],
            "go": bool(site_row["go"]),
            "state": "waiting" if waiting else ("go" if site_row["go"] else "no-go"),
            "detail": site_row["detail"],
            "drill": bool(site_row["drill"]),
            "at_ns": site_row["at_ns"],
            "rooms": {
                m["room"]: {"go": bool(m["go"]), "detail": m["detail"]} for m in rows if m["room"] != "_site"
            },
        },
        ensure_ascii=False,
    ).encode()


class _Item:
    """One MQTT message (a transition, or one site's readiness rows) or one InfluxDB line, and
    the rows it stands for."""

    __slots__ = ("keys", "line", "payload", "seq_of", "topic")

    def __init__(self, keys: list[Key], topic: str = "", payload: bytes = b"", line: bytes = b"",
                 seq_of: tuple[int, int] | None = None) -> None:
        self.keys, self.topic, self.payload, self.line, self.seq_of = keys, topic, payload, line, seq_of


class Outbox:
    """Four threads: MQTT (publishes what ``send`` hands over, at once), its acknowledgements,
    InfluxDB, and a poll of the store."""

    def __init__(
        self,
        store: sa.Engine,
        influx: Influx,
        publish: Publish,
        *,
        poll_s: float = 0.5,
        batch: int = 1000,
        mark_sent: MarkSent | None = None,
    ) -> None:
        """``mark_sent`` hands the sent keys to the store's main writer (the engine), so the outbox
        never waits for the write lock; without it the outbox marks them itself."""
        self.store, self.influx, self.publish, self.mark_sent = store, influx, publish, mark_sent
        self.poll_s, self.batch = poll_s, batch
        self._mqtt: Inbox[_Item] = Inbox()
        self._lines: Inbox[_Item] = Inbox()
        self._lock = threading.Lock()
        #: per row in flight, the outputs (mqtt, influx) that have not taken it yet
        self._flight: dict[Key, int] = {}
        #: rows handed to mark_sent, until the store shows them sent
        self._handed: set[Key] = set()
        #: per alarm, the newest seq handed to the MQTT client
        self._sent_seq: dict[int, int] = {}
        self._pub_lock = threading.Lock()
        self._acks: Inbox[tuple[_Item, Callable[[], None] | None]] = Inbox()
        self._retry: deque[_Item] = deque()
        self._stop = threading.Event()
        self._poll_now = threading.Event()
        self._threads = [
            threading.Thread(target=self._run_mqtt, name="rules-outbox-mqtt", daemon=True),
            threading.Thread(target=self._run_acks, name="rules-outbox-acks", daemon=True),
            threading.Thread(target=self._run_influx, name="rules-outbox-influx", daemon=True),
            threading.Thread(target=self._run_poll, name="rules-outbox-poll", daemon=True),
        ]
        self.sent = 0
        self.published = 0
        self.polls = 0

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._poll_now.set()
        self._mqtt.put(_Item([]))  # wake the queues
        self._acks.put((_Item([]), None))
        self._lines.put(_Item([]))
        for t in self._threads:
            t.join(timeout_s)

    def wake(self) -> None:
        """Look in the store now (kept for callers that wrote rows without handing them over)."""
        self._poll_now.set()

    # -- handing rows over ---------------------------------------------------------------------

    def send(self, committed: Committed) -> None:
        """Rows the engine just committed: published now, from memory, in the caller's thread (no
        hand-over to another thread on an alarm's path); InfluxDB and the acknowledgements follow
        on their own threads."""
        self._enqueue(committed.transitions, committed.readiness, publish_now=True)

    def _enqueue(self, transitions: Iterable[AlarmTransition], readiness: Iterable[Any], *,
                 publish_now: bool = False) -> int:
        """Take rows into flight (each once), publish them (or queue them for the MQTT thread) and
        queue them for InfluxDB; how many were new."""
        mqtt: list[_Item] = []
        lines: list[_Item] = []
        by_site: dict[str, list[Any]] = defaultdict(list)
        with self._lock:
            for t in transitions:
                key: Key = (t.alarm_id, t.seq)
                if key in self._flight or key in self._handed:
                    continue
                self._flight[key] = 2
                mqtt.append(_Item([key], t.topic, t.payload(), seq_of=(t.alarm_id, t.seq)))
                lines.append(_Item([key], line=alarm_line(t)))
            for m in readiness:
                key = readiness_key(m)
                if key in self._flight or key in self._handed:
                    continue
                self._flight[key] = 2
                by_site[m["site"]].append(m)
                lines.append(_Item([key], line=readiness_line(m)))
        for site, rows in sorted(by_site.items()):
            mqtt.append(_Item([readiness_key(m) for m in rows], readiness_topic(site), readiness_payload(site, rows)))
        for item in mqtt:
            if publish_now:
                self._acks.put((item, self._publish_one(item)))
            else:
                self._mqtt.put(item)
        for item in lines:
            self._lines.put(item)
        return len(lines)

    def _done(self, keys: list[Key]) -> None:
        """One output took these rows; those both took are marked sent."""
        finished: list[Key] = []
        with self._lock:
            for key in keys:
                left = self._flight.get(key, 0) - 1
                if left > 0:
                    self._flight[key] = left
                elif key in self._flight:
                    del self._flight[key]
                    self._handed.add(key)
                    finished.append(key)
        if not finished:
            return
        trans = [cast(TransitionKey, k) for k in finished if len(k) == 2]
        ready = [cast(ReadinessKey, k) for k in finished if len(k) == 4]
        self.sent += len(finished)
        if self.mark_sent is not None:
            self.mark_sent(trans, ready)
        else:
            with writing(self.store) as conn:
                mark_sent(conn, trans, ready)

    # -- MQTT ----------------------------------------------------------------------------------

    def _run_mqtt(self) -> None:
        """Hand each message to the client the moment it is queued; the acks thread waits for the
        broker's PUBACKs in order, so one slow acknowledgement never holds the next alarm back."""
        while not self._stop.is_set():
            items = self._take_retries() or [i for i in self._mqtt.take(1.0, self.batch) if i.keys]
            for item in items:
                self._acks.put((item, self._publish_one(item)))

    def _take_retries(self) -> list[_Item]:
        out: list[_Item] = []
        while self._retry:
            out.append(self._retry.popleft())
        return out

    def _publish_one(self, item: _Item) -> Callable[[], None] | None:
        """Publish (retained, QoS 1); None when a newer step of the alarm went out already. Called
        by the engine's thread (``send``) and the MQTT thread (polled rows, retries)."""
        with self._pub_lock:
            if item.seq_of is not None:
                alarm_id, seq = item.seq_of
                if self._sent_seq.get(alarm_id, 0) > seq:
                    return None  # the retained message must stay the alarm's latest step (see the docstring)
                self._sent_seq[alarm_id] = seq
            return self.publish(item.topic, item.payload)

    def _run_acks(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            got = [(i, w) for i, w in self._acks.take(1.0, self.batch) if i.keys]
            for n, (item, acknowledged) in enumerate(got):
                if acknowledged is not None:
                    try:
                        acknowledged()
                    except TimeoutError as exc:  # the broker is away: these go out again, in order
                        log.warning("outbox: %s; publishing %d again in %.1f s", exc, len(got) - n, backoff)
                        self._retry.extend(i for i, _ in got[n:])
                        self._stop.wait(backoff)
                        backoff = min(backoff * 2, RETRY_MAX_S)
                        self._mqtt.put(_Item([]))  # wake the publisher for them
                        break
                    self.published += 1
                self._done(item.keys)
            else:
                backoff = 0.2

    # -- InfluxDB ------------------------------------------------------------------------------

    def _run_influx(self) -> None:
        backoff = 0.5
        pending: list[_Item] = []
        while not self._stop.is_set():
            if len(pending) < self.batch:
                wait = 1.0 if not pending else 0.0
                pending += [i for i in self._lines.take(wait, self.batch - len(pending)) if i.keys]
            if not pending:
                continue
            try:
                self.influx.write(b"\n".join(i.line for i in pending))
            except (InfluxUnavailable, InfluxRejected, OSError) as exc:
                log.warning("outbox: InfluxDB: %s; %d rows wait, writing again in %.1f s", exc, len(pending), backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            backoff = 0.5
            done, pending = pending, []
            self._done([k for i in done for k in i.keys])

    # -- the store -----------------------------------------------------------------------------

    def _run_poll(self) -> None:
        backoff = self.poll_s
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.polls += 1
                backoff = self.poll_s
            except (OSError, sa.exc.OperationalError) as exc:
                log.warning("outbox: store: %s; looking again in %.1f s", exc, backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
            self._poll_now.wait(backoff)
            self._poll_now.clear()

    def poll_once(self) -> int:
        """Take into flight every unsent row nobody handed over; how many were new."""
        trans: list[AlarmTransition] = []
        ready: list[Any] = []
        unsent: set[Key] = set()
        with self.store.connect() as conn:
            after = 0
            while True:
                rows = conn.execute(
                    sa.select(*MESSAGE_COLUMNS)
                    .join(_A, _A.c.id == _T.c.alarm_id)
                    .where(_T.c.sent.is_(False), _T.c.id > after)
                    .order_by(_T.c.id)
                    .limit(self.batch)
                ).mappings().all()
                for m in rows:
                    unsent.add((m["alarm_id"], m["seq"]))
                    trans.append(row_message(m))
                if len(rows) < self.batch:
                    break
                after = rows[-1]["id"]
            for m in conn.execute(sa.select(_R).where(_R.c.sent.is_(False)).order_by(_R.c.id)).mappings():
                unsent.add(readiness_key(m))
                ready.append(dict(m))
        with self._lock:
            self._handed &= unsent  # what the store shows sent is done with
        return self._enqueue(trans, ready)

    # -- for tests and the old callers ---------------------------------------------------------

    def drain_once(self) -> bool:
        """Poll the store and send everything found, in this thread (no threads running); False
        when nothing is left."""
        self.poll_once()
        items = []
        while True:
            got = [i for i in self._mqtt.take(0, self.batch) if i.keys]
            if not got:
                break
            items += got
        for item in items:
            self._acks.put((item, self._publish_one(item)))
        while True:
            acks = [(i, w) for i, w in self._acks.take(0, self.batch) if i.keys]
            if not acks:
                break
            for item, acknowledged in acks:
                if acknowledged is not None:
                    acknowledged()
                    self.published += 1
                self._done(item.keys)
        lines = []
        while True:
            got = [i for i in self._lines.take(0, self.batch) if i.keys]
            if not got:
                break
            lines += got
        if lines:
            self.influx.write(b"\n".join(i.line for i in lines))
            self._done([k for i in lines for k in i.keys])
        return False
