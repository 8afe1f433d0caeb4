"""Is this device online? One answer for the rules engine (coverage, readiness) and the API (the wall).

A device is reporting when it was heard within its absence timeout and its last word was not
"offline" (its Last Will, or its gateway saying so). A device never heard counts as reporting for
one timeout after we started listening: it may simply not have had its turn yet.

The timeout is the one its kind's ``absence`` rule gives it (``timeout_s``, or the device's
override; the rule's ``rooms`` decide which devices it watches), so the wall shows a device
offline exactly when the rules engine would alarm it. A device no absence rule watches falls back
on the caller's default.
"""

from __future__ import annotations

from examwatch.inventory import Inventory
from examwatch.rulebook.configs import SITE, AbsenceConfig
from examwatch.rulebook.files import RuleSet

DEFAULT_TIMEOUT_S = 60.0


def reporting(
    last_heard_s: float | None, said_offline: bool, timeout_s: float, now_s: float, listening_since_s: float
) -> bool:
    """Whether a device is reporting at ``now_s``.

    ``last_heard_s``: when its last message was received (None: never since ``listening_since_s``);
    ``said_offline``: its last word, newer than that message, was "offline".
    """
    if last_heard_s is None:
        return now_s < listening_since_s + timeout_s
    return not said_offline and now_s - last_heard_s < timeout_s


def absence_timeouts(ruleset: RuleSet, inventory: Inventory) -> dict[str, float]:
    """Device id → the timeout of the absence rule that watches it (devices no rule watches are absent)."""
    rooms = {(s.id, r.id): r.type for s in inventory.sites for r in s.rooms}
    out: dict[str, float] = {}
    for kind, cfg in ruleset.rules:
        if kind == SITE or not isinstance(cfg, AbsenceConfig):
            continue
        for dev, ref in inventory.devices.items():
            if ref.kind == kind and cfg.covers(rooms[(ref.site, ref.room)]):
                out[dev] = cfg.overrides.get(dev, cfg.timeout_s)
    return out


__all__ = ["DEFAULT_TIMEOUT_S", "absence_timeouts", "reporting"]
