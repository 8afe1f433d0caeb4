"""The Kannel fixture itself: a real bearerbox, smsbox and fakesmsc deliver a UCS-2 text."""

from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path

from harness.servers import Kannel, wait_for


def test_sendsms_reaches_fakesmsc_as_ucs2(tmp_path: Path) -> None:
    kannel = Kannel(tmp_path / "kannel")
    kannel.start()
    try:
        query = urllib.parse.urlencode({
            "username": kannel.user, "password": kannel.password, "to": "13800000001", "from": "10690000",
            "text": "【考务告警】S03 保密室市电中断", "charset": "UTF-8", "coding": "2",
        })
        with urllib.request.urlopen(f"{kannel.sendsms_url}?{query}", timeout=5) as r:  # noqa: S310 - loopback
            assert r.read().decode().startswith("0: Accepted")
        wait_for(kannel.smsc.messages, 10, "fakesmsc to get the message")
        assert kannel.smsc.messages() == [("10690000", "13800000001", "【考务告警】S03 保密室市电中断")]
    finally:
        kannel.stop()
