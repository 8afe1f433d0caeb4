"""Short codes: the few characters an alert SMS carries so that a reply ``1 <code>`` names its alarm.

A code is a letter then letters or digits, without the characters a phone's reader confuses (I, L,
O, 0, 1): two characters while two are enough, more when the open alarms crowd them. It is unique
among the alarms the notifier holds open (``notify_alarm.state`` not resolved), and an alarm keeps
its code while it is open. The API (``/sms/reply``) looks codes up in the same table, upper-cased.
"""

from __future__ import annotations

import secrets
from typing import cast

import sqlalchemy as sa

from examwatch.store.notify_models import NotifyAlarm

_NA = cast(sa.Table, NotifyAlarm.__table__)
FIRST = "ABCDEFGHJKMNPQRSTUVWXYZ"
REST = FIRST + "23456789"
_TRIES = 12  # per length: a free two-character code is found at once while fewer than ~300 are open


def new_code(conn: sa.Connection) -> str:
    """A code no open alarm holds."""
    for length in (2, 3, 4, 5, 6):
        for _ in range(_TRIES):
            code = secrets.choice(FIRST) + "".join(secrets.choice(REST) for _ in range(length - 1))
            taken = conn.execute(sa.select(_NA.c.alarm_id).where(_NA.c.code == code, _NA.c.state != "resolved")
                                 .limit(1)).first()
            if taken is None:
                return code
    raise RuntimeError("no free short code: more open alarms than codes of six characters")  # ~10^9 codes


__all__ = ["FIRST", "REST", "new_code"]
