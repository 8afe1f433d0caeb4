"""A reload request when the broker cannot be reached: the answer says so at once, nothing hangs."""

from __future__ import annotations

import time
from pathlib import Path

from api.reload import request_reload
from examwatch.settings import load_settings
from harness.servers import free_port

ROOT = Path(__file__).parents[2]


def test_an_unreachable_broker_is_reported_not_raised() -> None:
    settings = load_settings(None, mode="demo", inventory=str(ROOT / "config/district.yaml"),
                             mqtt={"port": free_port()})
    started = time.monotonic()
    outcome = request_reload(settings, "rules", "test")
    assert outcome.state == "broker_unreachable"
    assert "the rules files at its next start" in outcome.detail
    assert time.monotonic() - started < 10
