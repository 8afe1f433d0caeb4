"""The state store shared by the rules engine, the notifier and the API (SQLAlchemy 2 + alembic)."""

from examwatch.store import access
from examwatch.store.db import engine, migrate, open_store, writing
from examwatch.store.models import Alarm, Base, Readiness, RuleState, Transition

__all__ = [
    "Alarm",
    "Base",
    "Readiness",
    "RuleState",
    "Transition",
    "access",
    "engine",
    "migrate",
    "open_store",
    "writing",
]
