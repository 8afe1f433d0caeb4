"""The state store's tables: alarms and their transitions, rule evaluation state, readiness.

Times are integer nanoseconds since the Unix epoch (UTC), the same value written to InfluxDB,
so a transition's point and its row agree to the nanosecond and a re-sent point overwrites
itself instead of adding a second one.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Alarm(Base):
    """One alarm of a rule on a subject; at most one active (not resolved) per rule, subject and drill."""

    __tablename__ = "alarm"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64), doc="device id, room as S01-R01, or site id")
    subject_type: Mapped[str] = mapped_column(String(8), doc="device, room or site")
    site: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8), doc="critical, major, minor or warning")
    state: Mapped[str] = mapped_column(String(16), doc="pending, firing, acknowledged or resolved")
    active: Mapped[bool] = mapped_column(Boolean)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[str] = mapped_column(Text, default="")
    opened_ns: Mapped[int] = mapped_column(BigInteger)
    fire_at_ns: Mapped[int | None] = mapped_column(
        BigInteger, nullable=True, doc="a pending alarm fires then"
    )
    updated_ns: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(Integer, default=0, doc="transitions so far")

    __table_args__ = (
        Index(
            "ix_alarm_one_active",
            "rule",
            "subject",
            "drill",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
        Index("ix_alarm_site_state", "site", "state"),
    )


class Transition(Base):
    """A change of an alarm's state: who, when, why. ``(alarm_id, seq)`` is its idempotent id."""

    __tablename__ = "alarm_transition"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarm.id"))
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(8))
    at_ns: Mapped[int] = mapped_column(BigInteger)
    by: Mapped[str] = mapped_column(String(64), doc="'rules' for the engine, else the person's name")
    comment: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")
    sent: Mapped[bool] = mapped_column(Boolean, default=False, doc="written to InfluxDB and MQTT (outbox)")

    __table_args__ = (
        UniqueConstraint("alarm_id", "seq", name="uq_transition_alarm_seq"),
        Index("ix_transition_unsent", "sent", "id"),
    )


class RuleState(Base):
    """A rule's evaluation state for one subject (last seen, pending windows, …), as JSON."""

    __tablename__ = "rule_state"

    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(80), primary_key=True, doc="~drill: drill data's state")
    state: Mapped[str] = mapped_column(Text)


class Readiness(Base):
    """A go/no-go roll-up at T−30 min for one paper at one room (or ``_site``)."""

    __tablename__ = "readiness"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    paper: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(32))
    room: Mapped[str] = mapped_column(String(32), doc="room id, or _site for the site roll-up")
    go: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, default="")
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    at_ns: Mapped[int] = mapped_column(BigInteger)
    sent: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        UniqueConstraint("paper", "site", "room", name="uq_readiness_paper_site_room"),
        Index("ix_readiness_unsent", "sent", "id"),
    )
