"""Send what the store holds and has not sent: alarm transitions and readiness roll-ups.

MQTT is published before InfluxDB is written, so alarms reach the notifier while InfluxDB is down.

Every transition goes to InfluxDB (measurement ``alarm``) and, retained, to MQTT
``exam/v1/_alarm/{site}/{rule}/{subject}``; every readiness row to InfluxDB (``readiness``) and
``exam/v1/_readiness/{site}``. A row is marked sent only after both accepted it, so a crash
sends it again: the InfluxDB point has the same series and nanosecond time and overwrites
itself, and MQTT consumers tell a repeat by ``transition_id``. Transitions written by other
processes (an acknowledgement from the CLI or the API) are found by polling the store.

``alarm`` schema (the dashboards build on it): tags rule, severity, site, subject,
subject_type, drill (only when true); fields state, active, message, alarm_id.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

import sqlalchemy as sa

from examwatch import lineproto, topics
from examwatch.alarm import AlarmTransition
from examwatch.influx import Influx, InfluxRejected, InfluxUnavailable
from examwatch.store import Alarm, Readiness, Transition, writing

log = logging.getLogger("examwatch.rules.outbox")
_A, _T, _R = (
    cast(sa.Table, Alarm.__table__),
    cast(sa.Table, Transition.__table__),
    cast(sa.Table, Readiness.__table__),
)
#: publish retained at QoS 1; returns a call that waits for the broker's PUBACK
Publish = Callable[[str, bytes], Callable[[], None]]
MarkSent = Callable[[list[int], list[int]], None]


def readiness_topic(site: str) -> str:
    return f"{topics.ROOT}/_readiness/{site}"


def alarm_line(m: Any) -> bytes:
    tags = (
        f",rule={lineproto.escape_tag(m['rule'])},severity={m['severity']},site={lineproto.escape_tag(m['site'])}"
        f",subject={lineproto.escape_tag(m['subject'])},subject_type={m['subject_type']}"
    )
    if m["drill"]:
        tags += ",drill=true"
    fields = (
        f"state={lineproto.quote(m['state'])},active={lineproto.value(m['state'] != 'resolved')},"
        f"message={lineproto.quote(m['message'])},alarm_id={m['alarm_id']}i"
    )
    return lineproto.line("alarm", tags, fields, m["at_ns"])


def alarm_message(m: Any) -> AlarmTransition:
    """The contract's message for a transition row joined with its alarm."""
    return AlarmTransition(
        alarm_id=m["alarm_id"], seq=m["seq"], rule=m["rule"], severity=m["severity"], site=m["site"],
        subject=m["subject"], subject_type=m["subject_type"], state=m["state"], message=m["message"],
        drill=bool(m["drill"]), at_ns=m["at_ns"], by=m["by"], comment=m["comment"],
    )


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


class Outbox:
    """A thread that drains the store's unsent rows; ``wake()`` after a commit sends at once."""

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
        """``mark_sent`` hands the sent ids to the store's main writer (the engine); without it
        the outbox marks them itself."""
        self.store, self.influx, self.publish, self.mark_sent = store, influx, publish, mark_sent
        self._handed: tuple[set[int], set[int]] = (set(), set())
        self._published: tuple[set[int], set[int]] = (set(), set())  # on MQTT, not yet in InfluxDB
        self.poll_s, self.batch = poll_s, batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rules-outbox", daemon=True)
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(30)

    def _run(self) -> None:
        backoff = self.poll_s
        while not self._stop.is_set():
            try:
                more = self.drain_once()
                backoff = self.poll_s
            except (InfluxUnavailable, InfluxRejected, OSError, sa.exc.OperationalError, TimeoutError) as exc:
                log.warning("outbox: %s; retrying in %.1f s", exc, backoff)
                more = False
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            if not more:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def drain_once(self) -> bool:
        """Send one batch of each; True when there may be more."""
        handed_t, handed_r = self._handed
        with self.store.connect() as conn:
            self._prune(conn)
            trans = (
                conn.execute(
                    sa.select(
                        _T.c.id,
                        _T.c.alarm_id,
                        _T.c.seq,
                        _T.c.state,
                        _T.c.severity,
                        _T.c.at_ns,
                        _T.c.by,
                        _T.c.comment,
                        _T.c.message,
                        _A.c.rule,
                        _A.c.site,
                        _A.c.subject,
                        _A.c.subject_type,
                        _A.c.drill,
                    )
                    .join(_A, _A.c.id == _T.c.alarm_id)
                    .where(_T.c.sent.is_(False), _T.c.id.not_in(handed_t))
                    .order_by(_T.c.id)
                    .limit(self.batch)
                )
                .mappings()
                .all()
            )
            ready = (
                conn.execute(
                    sa.select(_R)
                    .where(_R.c.sent.is_(False), _R.c.id.not_in(handed_r))
                    .order_by(_R.c.id)
                    .limit(self.batch)
                )
                .mappings()
                .all()
            )
        if not trans and not ready:
            return False
        # MQTT first: it is the notifier's (the SMS's) path, and must not wait for, or on, InfluxDB.
        # What was published stays remembered, so an InfluxDB outage does not re-publish it on
        # every retry (after a restart it is published once more: retained and idempotent by seq).
        pub_t, pub_r = self._published
        new_t = [m for m in trans if m["id"] not in pub_t]
        new_r = [m for m in ready if m["id"] not in pub_r]
        messages = [alarm_message(m) for m in new_t]
        waits = [self.publish(msg.topic, msg.payload()) for msg in messages]
        waits += [
            self.publish(
                readiness_topic(site), self._readiness_payload(site, [m for m in new_r if m["site"] == site])
            )
            for site in sorted({m["site"] for m in new_r})
        ]
        for acknowledged in waits:
            acknowledged()
        pub_t.update(m["id"] for m in new_t)
        pub_r.update(m["id"] for m in new_r)
        lines = [alarm_line(m) for m in trans] + [readiness_line(m) for m in ready]
        self.influx.write(b"\n".join(lines))
        t_ids, r_ids = [m["id"] for m in trans], [m["id"] for m in ready]
        pub_t.difference_update(t_ids)
        pub_r.difference_update(r_ids)
        if self.mark_sent is not None:
            self.mark_sent(t_ids, r_ids)
            handed_t.update(t_ids)
            handed_r.update(r_ids)
        else:
            with writing(self.store) as conn:
                if t_ids:
                    conn.execute(sa.update(_T).where(_T.c.id.in_(t_ids)).values(sent=True))
                if r_ids:
                    conn.execute(sa.update(_R).where(_R.c.id.in_(r_ids)).values(sent=True))
        self.sent += len(trans) + len(ready)
        return len(trans) == self.batch or len(ready) == self.batch

    def _prune(self, conn: sa.Connection) -> None:
        """Forget handed ids the store now shows as sent."""
        for ids, table in zip(self._handed, (_T, _R), strict=True):
            if ids:
                done = conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids), table.c.sent)).scalars()
                ids.difference_update(done)

    @staticmethod
    def _readiness_payload(site: str, rows: list[Any]) -> bytes:
        site_row = next((m for m in rows if m["room"] == "_site"), rows[-1])
        return json.dumps(
            {
                "site": site,
                "paper": site_row["paper"],
                "go": bool(site_row["go"]),
                "detail": site_row["detail"],
                "drill": bool(site_row["drill"]),
                "at_ns": site_row["at_ns"],
                "rooms": {
                    m["room"]: {"go": bool(m["go"]), "detail": m["detail"]}
                    for m in rows
                    if m["room"] != "_site"
                },
            },
            ensure_ascii=False,
        ).encode()
