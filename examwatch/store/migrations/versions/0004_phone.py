"""Handling an alarm from the phone: short codes, delivery reports, SMS replies.

- ``notify_alarm.code``: the few characters an alert SMS carries for its alarm, unique among the
  alarms the notifier holds open; a reply ``1 <code>`` acknowledges that alarm.
- ``notification.delivery`` / ``delivered_ns``: the gateway's delivery report (Kannel's
  ``dlr-url``) for the SMS: what the scorer counts as received, and how a send whose outcome a
  crash left unknown is told from one that never left.
- ``sms_reply``: every SMS received (Kannel's ``sms-service``), who sent it, what it was taken to
  mean, and what was answered: the audit of acknowledgements by phone, refusals included.

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
    op.create_index("ix_notify_alarm_code", "notify_alarm", ["code"])
    with op.batch_alter_table("notification") as t:
        t.add_column(sa.Column("delivery", sa.String(12), nullable=False, server_default=""))
        t.add_column(sa.Column("delivered_ns", sa.BigInteger(), nullable=True))
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
    with op.batch_alter_table("notification") as t:
        t.drop_column("delivered_ns")
        t.drop_column("delivery")
    op.drop_index("ix_notify_alarm_code", "notify_alarm")
    with op.batch_alter_table("notify_alarm") as t:
        t.drop_column("code")
