"""Why ingest refuses a message: part of the contract, because walls and drills read these.

A refused message is kept as a point in measurement ``ingest_reject`` with tag ``reason``.
"""

from __future__ import annotations

from enum import StrEnum

REJECT_MEASUREMENT = "ingest_reject"


class Reason(StrEnum):
    BAD_TOPIC = "bad_topic"  # not exam/v1/{site}/{kind}/{device}/{channel}
    UNKNOWN_KIND = "unknown_kind"
    UNKNOWN_CHANNEL = "unknown_channel"
    UNKNOWN_DEVICE = "unknown_device"  # not in the inventory: a security event
    TOPIC_MISMATCH = "topic_mismatch"  # topic's site/kind or payload's device disagree with the inventory
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    SCHEMA = "schema"  # wrong type, missing or extra field, out of bounds
    NON_FINITE = "non_finite"  # NaN or Infinity
    CLOCK_OFFSET = "clock_offset"  # device timestamp too far from receive time
    BAD_STATUS = "bad_status"  # status payload other than online/offline
    INTERNAL = "internal"  # ingest failed on it (a bug): kept as a record, counted, logged
