"""Alarms, transitions (outbox), rule state and readiness.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarm",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("subject_type", sa.String(8), nullable=False),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("drill", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("opened_ns", sa.BigInteger(), nullable=False),
        sa.Column("fire_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_alarm_one_active",
        "alarm",
        ["rule", "subject", "drill"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_index("ix_alarm_site_state", "alarm", ["site", "state"])
    op.create_table(
        "alarm_transition",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.Integer(), sa.ForeignKey("alarm.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("alarm_id", "seq", name="uq_transition_alarm_seq"),
    )
    op.create_index("ix_transition_unsent", "alarm_transition", ["sent", "id"])
    op.create_table(
        "rule_state",
        sa.Column("rule", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("state", sa.Text(), nullable=False),
    )
    op.create_table(
        "readiness",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("paper", sa.String(64), nullable=False),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("room", sa.String(32), nullable=False),
        sa.Column("go", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("drill", sa.Boolean(), nullable=False),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("paper", "site", "room", name="uq_readiness_paper_site_room"),
    )
    op.create_index("ix_readiness_unsent", "readiness", ["sent", "id"])


def downgrade() -> None:
    op.drop_table("readiness")
    op.drop_table("rule_state")
    op.drop_table("alarm_transition")
    op.drop_table("alarm")
