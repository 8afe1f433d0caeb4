"""MQTT identities and their passwords.

Every password is derived from the master secret with HMAC-SHA256, so the broker's password
file, each service and the simulator agree without a password list to distribute. A device's
username is its id; a site gateway is ``gw-<site>``; a service is ``svc-<name>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SERVICES = ("ingest", "rules", "api", "notifier", "simulator")


def _derive(secret: str, purpose: str) -> str:
    digest = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def service_user(name: str) -> str:
    return f"svc-{name}"


def gateway_user(site: str) -> str:
    return f"gw-{site}"


def password(secret: str, username: str) -> str:
    """The MQTT password of ``username`` (a device id, ``gw-…`` or ``svc-…``)."""
    return _derive(secret, f"mqtt:{username}")


def mosquitto_hash(plain: str, iterations: int = 101) -> str:
    """A mosquitto 2 password-file hash (``$7$``: PBKDF2-HMAC-SHA512), as mosquitto_passwd writes it."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", plain.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
