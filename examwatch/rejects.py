"""Why a message is refused: part of the contract, because walls, drills and alarms name these.

Ingest keeps a refused message as a point in measurement ``ingest_reject`` with tag ``reason``;
the rules engine's ``intake`` rules raise alarms with the same reasons.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ValidationError

from examwatch.datafile import format_loc

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


def classify(exc: ValidationError, payload: bytes | bytearray) -> tuple[Reason, str]:
    """Why a payload failed its kind's schema, and where: not UTF-8, not JSON, NaN, or the schema."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as ude:
            return Reason.NOT_UTF8, f"invalid UTF-8 at byte {ude.start}"
        return Reason.NOT_JSON, first["msg"]
    for err in errors:
        if err["type"] == "finite_number":
            return Reason.NON_FINITE, f"{format_loc(tuple(err['loc']))}: {err['msg']}"
    return Reason.SCHEMA, "; ".join(f"{format_loc(tuple(e['loc']))}: {e['msg']}" for e in errors[:3])
