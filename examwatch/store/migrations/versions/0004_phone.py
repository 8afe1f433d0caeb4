"""Handling an alarm from the phone (short codes, delivery reports, SMS replies); incidents and floods.

- ``notify_alarm.code``: the few characters an alert SMS carries for its alarm, unique among the
  alarms the notifier holds open; a reply ``1 <code>`` acknowledges that alarm.
- ``notification.delivery`` / ``delivered_ns``: the gateway's delivery report (Kannel's
  ``dlr-url``) for the SMS: what the scorer counts as received, and how a send whose outcome a
  crash left unknown is told from one that never left.
- ``sms_reply``: every SMS received (Kannel's ``sms-service``), who sent it, what it was taken to
  mean, and what was answered: the audit of acknowledgements by phone, refusals included.
- ``notify_alarm.incident`` / ``folded`` / ``told_rank`` / ``awaiting`` / ``acked_by`` / ``acked_ns``
  / ``resolved_ns``: alarms of one cause at one site fold into one incident (one thread of texts),
  the incident's root row holding its timers; ``notification.severity`` orders the send queue.
- ``notify_flood``: many alarms of one rule at once, told as one summary per recipient.

Revision ID: 0004_phone
Revises: 0003_api
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_phone"
down_revision = "0003_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notify_alarm") as t:
        t.add_column(sa.Column("code", sa.String(8), nullable=True))
        t.add_column(sa.Column("incident", sa.Integer(), nullable=True))
        t.add_column(sa.Column("folded", sa.String(12), nullable=False, server_default=""))
        t.add_column(sa.Column("flood", sa.Integer(), nullable=True))
        t.add_column(sa.Column("told_rank", sa.Integer(), nullable=False, server_default="0"))
        t.add_column(sa.Column("awaiting", sa.Integer(), nullable=True))
        t.add_column(sa.Column("acked_by", sa.String(64), nullable=True))
        t.add_column(sa.Column("acked_ns", sa.BigInteger(), nullable=True))
        t.add_column(sa.Column("resolved_ns", sa.BigInteger(), nullable=True))
    op.create_index("ix_notify_alarm_code", "notify_alarm", ["code"])
    op.create_index("ix_notify_alarm_incident", "notify_alarm", ["incident"])
    op.create_index("ix_notify_alarm_rule_fired", "notify_alarm", ["rule", "fired_ns"])
    op.create_index("ix_notify_alarm_flood", "notify_alarm", ["flood"])
    with op.batch_alter_table("notification") as t:
        t.add_column(sa.Column("delivery", sa.String(12), nullable=False, server_default=""))
        t.add_column(sa.Column("delivered_ns", sa.BigInteger(), nullable=True))
        t.add_column(sa.Column("severity", sa.String(8), nullable=False, server_default=""))
    op.create_table(
        "notify_flood",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("drill", sa.Boolean(), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("opened_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_ns", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sites", sa.Text(), nullable=False),
        sa.Column("closed_ns", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_notify_flood_rule", "notify_flood", ["rule", "drill", "last_ns"])
    op.create_table(
        "sms_reply",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("person", sa.String(64), nullable=True),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_sms_reply_at_ns", "sms_reply", ["at_ns"])


def downgrade() -> None:
    op.drop_index("ix_sms_reply_at_ns", "sms_reply")
    op.drop_table("sms_reply")
    op.drop_index("ix_notify_flood_rule", "notify_flood")
    op.drop_table("notify_flood")
    with op.batch_alter_table("notification") as t:
        t.drop_column("severity")
        t.drop_column("delivered_ns")
        t.drop_column("delivery")
    for index in ("ix_notify_alarm_flood", "ix_notify_alarm_rule_fired", "ix_notify_alarm_incident",
                  "ix_notify_alarm_code"):
        op.drop_index(index, "notify_alarm")
    with op.batch_alter_table("notify_alarm") as t:
        for column in ("resolved_ns", "acked_ns", "acked_by", "awaiting", "told_rank", "flood", "folded",
                       "incident", "code"):
            t.drop_column(column)
