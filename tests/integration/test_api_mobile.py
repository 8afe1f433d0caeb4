"""The alarm's page on the phone, driven in headless Chromium (Debian's) by Playwright, against a real API.

Open the link from an alert, acknowledge, see the timeline change; forged, expired and
other-alarm tokens and replayed forms are refused; a screenshot goes into docs/.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from examwatch import links
from examwatch.alarm import Severity
from examwatch.store.lifecycle import history
from harness.api_stack import ApiStack
from harness.notify_kit import PHONES

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What Chromium needs on a machine with no network but loopback (it would call home otherwise).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
#: the screenshot in the docs; a run with EXAMWATCH_UPDATE_SCREENSHOTS=1 replaces it
DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "mobile-page.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # A phone's screen: the page must work at 360 px wide.
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, locale="zh-CN")
    p = context.new_page()
    yield p
    context.close()


def test_open_the_link_acknowledge_and_see_the_timeline(api: ApiStack, page: Page, tmp_path: Path) -> None:
    alarm = api.open_alarm("S01-VAULT-PWR1", "power_mains_lost", severity=Severity.CRITICAL)
    n = api.told(alarm, "P1", "chief-S01", PHONES["chief-S01"])
    response = page.goto(f"{api.url}/m/{api.link(n)}")
    assert response is not None
    assert response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    assert page.locator("h1").first.inner_text() == "市电中断"
    assert page.locator("#state").inner_text() == "告警中"
    assert "S01 人大附中" in page.inner_text("body")
    assert "告警短信 → S01主考（已发出）" in page.locator("#timeline").inner_text()

    page.click("#acknowledge")
    page.wait_for_selector("#notice")
    assert page.locator("#notice").inner_text() == "已确认，提醒已停止。"
    assert page.locator("#state").inner_text() == "已确认"
    assert "S01主考 确认" in page.locator("#timeline").inner_text()
    assert [(t.state, t.by) for t in history(api.store, alarm)] == [("firing", "rules"), ("acknowledged", "chief-S01")]
    assert page.locator("#acknowledge").count() == 0, "nothing left to acknowledge"

    page.fill("textarea[name=comment]", "已联系电业局，UPS供电中")
    page.click("#comment")
    page.wait_for_selector("#notice")
    assert "S01主考 备注：已联系电业局，UPS供电中" in page.locator("#timeline").inner_text()
    shot = DOCS_SCREENSHOT if os.environ.get("EXAMWATCH_UPDATE_SCREENSHOTS") == "1" else tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    page.reload()  # the GET after the redirect: reloading acts no second time
    assert len(history(api.store, alarm)) == 3


def test_forged_expired_and_other_alarm_tokens_are_refused(api: ApiStack, page: Page) -> None:
    alarm = api.open_alarm("S02-R01-JAM1", "jammer_offline")
    other = api.open_alarm("S02-R02-JAM1", "jammer_offline")
    n = api.told(alarm, "F1", "chief-S02", PHONES["chief-S02"])
    n_other = api.told(other, "F2", "chief-S02", PHONES["chief-S02"])
    good = api.link(n)
    forged = good[:-2] + ("AA" if good[-2:] != "AA" else "BB")
    r = page.goto(f"{api.url}/m/{forged}")
    assert r is not None
    assert r.status == 403
    assert page.locator("#notice").inner_text() == "链接无效。"
    assert "S02" not in page.inner_text("body"), "a refused link names no alarm"
    not_ours = links.sign("another-installation-secret", n, time.time() + 3600)
    assert httpx.get(f"{api.url}/m/{not_ours}").status_code == 403
    expired = links.sign(api.secret, n, time.time() - 120)
    r = page.goto(f"{api.url}/m/{expired}")
    assert r is not None
    assert r.status == 410
    assert "链接已过期" in page.locator("#notice").inner_text()

    # The page of one alarm, its form posted to the link of another: refused, nothing changes.
    page.goto(f"{api.url}/m/{good}")
    form = page.locator("input[name=form]").first.get_attribute("value")
    r2 = page.request.post(f"{api.url}/m/{api.link(n_other)}", form={"form": form or "", "action": "acknowledge"})
    assert r2.status == 409
    assert len(history(api.store, other)) == 1
    assert len(history(api.store, alarm)) == 1

    # The same form posted twice (a replay): the first acts, the second finds the alarm moved on.
    first = page.request.post(f"{api.url}/m/{good}", form={"form": form or "", "action": "acknowledge"},
                              max_redirects=0)
    assert first.status == 303
    again = page.request.post(f"{api.url}/m/{good}", form={"form": form or "", "action": "resolve"})
    assert again.status == 409
    assert [t.state for t in history(api.store, alarm)] == ["firing", "acknowledged"]

    # A form from another site (what a cross-site request carries) is refused before anything else.
    cross = httpx.post(f"{api.url}/m/{good}", data={"form": "x", "action": "resolve"},
                       headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert [t.state for t in history(api.store, alarm)] == ["firing", "acknowledged"]
