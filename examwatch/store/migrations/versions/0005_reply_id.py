"""SMS replies: the gateway's id of each received SMS, so a retried callback is answered, not obeyed twice.

Kannel retries a callback the API did not answer (``http-request-retry``), with the same id
(``%I``); ``sms_reply.gateway_id`` is unique, so the second call finds the first one's answer.

Revision ID: 0005_reply_id
Revises: 0004_phone
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_reply_id"
down_revision = "0004_phone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_reply") as t:
        t.add_column(sa.Column("gateway_id", sa.String(64), nullable=True))
    op.create_index("ix_sms_reply_gateway_id", "sms_reply", ["gateway_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_sms_reply_gateway_id", "sms_reply")
    with op.batch_alter_table("sms_reply") as t:
        t.drop_column("gateway_id")
