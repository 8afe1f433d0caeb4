"""Notifier: its alarm view, the notification outbox, attempts, provider health, silences.

Revision ID: 0002_notify
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_notify"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_alarm",
        sa.Column("alarm_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("subject_type", sa.String(8), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("drill", sa.Boolean(), nullable=False),
        sa.Column("fired_cause", sa.String(32), nullable=False),
        sa.Column("fired_ns", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("remind_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("escalate_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("cause", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("drill", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("silence_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("next_try_ns", sa.BigInteger(), nullable=False),
        sa.Column("sent_ns", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.UniqueConstraint("cause", "address", name="uq_notification_cause_address"),
    )
    op.create_index("ix_notification_status", "notification", ["status", "next_try_ns"])
    op.create_index("ix_notification_alarm", "notification", ["alarm_id"])
    op.create_table(
        "notify_attempt",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.Integer(), sa.ForeignKey("notification.id"), nullable=False),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("duration_us", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
    )
    op.create_index("ix_notify_attempt_notification", "notify_attempt", ["notification_id"])
    op.create_table(
        "notify_health",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "silence",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("site", sa.String(32), nullable=True),
        sa.Column("room", sa.String(32), nullable=True),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("starts_ns", sa.BigInteger(), nullable=False),
        sa.Column("ends_ns", sa.BigInteger(), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("expired_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_silence_ends", "silence", ["ends_ns"])


def downgrade() -> None:
    op.drop_table("silence")
    op.drop_table("notify_health")
    op.drop_table("notify_attempt")
    op.drop_table("notification")
    op.drop_table("notify_alarm")
