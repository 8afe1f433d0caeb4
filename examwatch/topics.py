"""The topic scheme: ``exam/v1/{site}/{kind}/{device}/{channel}``.

Service topics put an underscore-prefixed word where a site would be (``exam/v1/_alarm/...``);
no site id may start with ``_``, so device and service topics never collide.
"""

from __future__ import annotations

from typing import NamedTuple

ROOT = "exam/v1"
ALL = f"{ROOT}/#"
STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"


class DeviceTopic(NamedTuple):
    site: str
    kind: str
    device: str
    channel: str


def device_topic(site: str, kind: str, device: str, channel: str) -> str:
    return f"{ROOT}/{site}/{kind}/{device}/{channel}"


def parse(topic: str) -> DeviceTopic | None:
    """Split a device topic; None when it is not ``exam/v1/`` followed by four non-empty levels."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "exam" or parts[1] != "v1" or not all(parts[2:]):
        return None
    return DeviceTopic(parts[2], parts[3], parts[4], parts[5])


def is_service_topic(topic: str) -> bool:
    """True for ``exam/v1/_…`` topics that services publish (alarms, readiness)."""
    return topic.startswith(f"{ROOT}/_")
