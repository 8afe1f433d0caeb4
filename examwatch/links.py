"""Signed, expiring tokens for the links in alert SMS (one notification, one recipient, one alarm),
and the key that Kannel's callbacks to the API carry.

A token names a notification (the outbox row of one SMS to one phone about one alarm) and when
it expires, and is signed with a key derived from the master secret. The notifier puts it in the
alert's link; the API's mobile page accepts it for that alarm and that recipient only, until it
expires. It is short because an SMS is (70 characters in Chinese): 15 characters.

Layout before base64url: notification id (5 bytes), expiry in minutes since 2020-01-01 UTC
(3 bytes: until 2051), then the first 4 bytes of HMAC-SHA256 over those 8 bytes. Four bytes of
MAC make a forgery one guess in four billion for one notification, and the API limits guesses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

_EPOCH_S = 1_577_836_800  # 2020-01-01T00:00:00Z
_MAC_BYTES = 4
LENGTH = 16  # characters of a token (12 bytes, base64url)


class LinkError(ValueError):
    """The token is malformed, forged or expired (the message says which, for the audit log only)."""


@dataclass(frozen=True, slots=True)
class Grant:
    notification_id: int
    expires_s: float


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"examwatch:alarm-link", hashlib.sha256).digest()


def _mac(secret: str, body: bytes) -> bytes:
    return hmac.new(_key(secret), body, hashlib.sha256).digest()[:_MAC_BYTES]


def callback_key(secret: str) -> str:
    """The key Kannel's calls to the API carry (``k=`` in the ``sms-service`` and ``dlr-url`` URLs),
    so that only our gateway can report deliveries and replies; derived from the master secret."""
    digest = hmac.new(secret.encode(), b"examwatch:kannel-callback", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def sign(secret: str, notification_id: int, expires_s: float) -> str:
    """A token for ``notification_id`` valid until ``expires_s`` (epoch seconds, rounded up to a minute)."""
    if not 0 < notification_id < 2**40:
        raise ValueError(f"notification id {notification_id} out of range")
    minutes = max(0, -(-int(expires_s - _EPOCH_S) // 60))
    body = notification_id.to_bytes(5, "big") + min(minutes, 2**24 - 1).to_bytes(3, "big")
    return base64.urlsafe_b64encode(body + _mac(secret, body)).decode()


def verify(secret: str, token: str, now_s: float) -> Grant:
    """The grant a token carries; LinkError if it is malformed, not ours, or expired at ``now_s``."""
    if len(token) != LENGTH:
        raise LinkError("malformed token")
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise LinkError("malformed token") from None
    body, mac = raw[:8], raw[8:]
    if len(raw) != 8 + _MAC_BYTES or not hmac.compare_digest(mac, _mac(secret, body)):
        raise LinkError("bad signature")
    grant = Grant(int.from_bytes(body[:5], "big"), _EPOCH_S + int.from_bytes(body[5:], "big") * 60)
    if now_s >= grant.expires_s:
        raise LinkError("expired")
    return grant


__all__ = ["LENGTH", "Grant", "LinkError", "callback_key", "sign", "verify"]
