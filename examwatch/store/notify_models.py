"""The notifier's tables: its view of each alarm, the outbox of notifications, every attempt, silences.

Times are integer nanoseconds since the Unix epoch (UTC), as in :mod:`examwatch.store.models`.
A notification's ``cause`` is the alarm transition id (``alarm_id.seq``) it answers, or that id
with ``+r<n>`` (n-th reminder), ``+l<n>`` (escalation to level n) or ``+u<alarm>.<seq>`` (an update
about a member of its incident); a flood's summary is ``flood<id>``. ``(cause, address)`` is
unique, so a transition delivered twice, or a timer that fires in two workers, adds no second
message to the same phone.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from examwatch.store.models import Base


class NotifyAlarm(Base):
    """What the notifier knows of an alarm: its last transition, who was told, when to remind or escalate."""

    __tablename__ = "notify_alarm"

    alarm_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, doc="last transition applied; older ones are ignored")
    rule: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(8))
    severity: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    drill: Mapped[bool] = mapped_column(Boolean)
    fired_cause: Mapped[str] = mapped_column(String(32), default="", doc="transition id of the alert sent")
    fired_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True, doc="time of the alarm's firing")
    level: Mapped[int] = mapped_column(Integer, default=0, doc="highest roster level told so far (0: nobody)")
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    remind_at_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    escalate_at_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_ns: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str | None] = mapped_column(String(8), nullable=True, index=True,
                                             doc="the short code alert SMS carry; unique among open alarms")
    incident: Mapped[int | None] = mapped_column(
        Integer, nullable=True, index=True,
        doc="alarm id of its incident's root (its own id for a root); the root's row holds the timers")
    folded: Mapped[str] = mapped_column(
        String(12), default="", server_default="",
        doc="why no alert of its own: inhibited (implied by another), folded (no worse), flood; '' if told")
    flood: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True, doc="the flood it was folded into")
    told_rank: Mapped[int] = mapped_column(Integer, default=0, server_default="0",
                                           doc="root: highest severity rank told of the incident")
    awaiting: Mapped[int | None] = mapped_column(
        Integer, nullable=True, doc="root: the alarm whose acknowledgement stops the incident's reminders")
    acked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acked_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resolved_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_notify_alarm_rule_fired", "rule", "fired_ns"),)


class NotifyFlood(Base):
    """Many alarms of one rule within a minute: one summary per recipient instead of an SMS each."""

    __tablename__ = "notify_flood"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    drill: Mapped[bool] = mapped_column(Boolean)
    severity: Mapped[str] = mapped_column(String(8), doc="the worst of its alarms")
    opened_ns: Mapped[int] = mapped_column(BigInteger)
    last_ns: Mapped[int] = mapped_column(BigInteger, doc="when its latest alarm fired")
    count: Mapped[int] = mapped_column(Integer, doc="alarms folded into it")
    sites: Mapped[str] = mapped_column(Text, doc="the sites of its alarms, comma-separated, in order of arrival")
    closed_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True, doc="when its last alarm resolved")

    __table_args__ = (Index("ix_notify_flood_rule", "rule", "drill", "last_ns"),)


class Notification(Base):
    """One message to one address; stored before it is sent, and kept after."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(Integer, doc="the alarm it is about; 0 for a flood's summary")
    cause: Mapped[str] = mapped_column(String(40), doc="alarm_id.seq, with +r<n> or +l<n> for reminders and levels")
    kind: Mapped[str] = mapped_column(
        String(12), doc="alert, update, reminder, escalation, summary, all_clear or summary_clear")
    level: Mapped[int] = mapped_column(Integer)
    person: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64), doc="phone number")
    text: Mapped[str] = mapped_column(Text)
    drill: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(
        String(12), doc="queued, sent, muted, failed, dropped (stale: acknowledged or cleared first) or folded "
                        "(into a flood's summary)")
    silence_id: Mapped[int | None] = mapped_column(Integer, nullable=True, doc="the silence that muted it")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_ns: Mapped[int] = mapped_column(BigInteger)
    next_try_ns: Mapped[int] = mapped_column(BigInteger)
    sent_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result: Mapped[str] = mapped_column(Text, default="", doc="the provider's last answer")
    delivery: Mapped[str] = mapped_column(String(12), default="", server_default="",
                                          doc="delivery report: '', delivered, failed, buffered, submitted")
    delivered_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True, doc="when the delivery report came")
    severity: Mapped[str] = mapped_column(String(8), default="", server_default="",
                                          doc="of what it tells: the send queue goes by severity, then age")

    __table_args__ = (
        UniqueConstraint("cause", "address", name="uq_notification_cause_address"),
        Index("ix_notification_status", "status", "next_try_ns"),
        Index("ix_notification_alarm", "alarm_id"),
    )


class NotifyAttempt(Base):
    """One call to the provider for a notification, and what it answered."""

    __tablename__ = "notify_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id"))
    at_ns: Mapped[int] = mapped_column(BigInteger)
    ok: Mapped[bool] = mapped_column(Boolean)
    duration_us: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_notify_attempt_notification", "notification_id"),)


class NotifyHealth(Base):
    """The provider's health as the notifier last saw it (read by the API and ``examwatch notify status``)."""

    __tablename__ = "notify_health"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text)
    at_ns: Mapped[int] = mapped_column(BigInteger)


class Silence(Base):
    """Mutes notifications for alarms matching every matcher given (site, room, device, rule) until ``ends_ns``."""

    __tablename__ = "silence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(12), doc="silence or maintenance")
    site: Mapped[str | None] = mapped_column(String(32), nullable=True)
    room: Mapped[str | None] = mapped_column(String(32), nullable=True, doc="room id within site")
    device: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    starts_ns: Mapped[int] = mapped_column(BigInteger)
    ends_ns: Mapped[int] = mapped_column(BigInteger)
    by: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_ns: Mapped[int] = mapped_column(BigInteger)
    expired_by: Mapped[str | None] = mapped_column(String(64), nullable=True, doc="who ended it early")

    __table_args__ = (Index("ix_silence_ends", "ends_ns"),)


class SmsReply(Base):
    """An SMS received from a phone (a reply to an alert), what it was taken to mean and what was answered."""

    __tablename__ = "sms_reply"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at_ns: Mapped[int] = mapped_column(BigInteger, index=True)
    sender: Mapped[str] = mapped_column(String(32), doc="the sender's number as the gateway gave it")
    text: Mapped[str] = mapped_column(Text, doc="what was received (cut at 500 characters)")
    outcome: Mapped[str] = mapped_column(String(16), doc="ack, comment, escalate, ambiguous, refused, …")
    person: Mapped[str | None] = mapped_column(String(64), nullable=True, doc="the roster person of that number")
    alarm_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer: Mapped[str] = mapped_column(Text, default="", server_default="", doc="the SMS sent back ('' for none)")
    gateway_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True, index=True,
                                                   doc="Kannel's id of the SMS (%I): a retried call is answered once")
