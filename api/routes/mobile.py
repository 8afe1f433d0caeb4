"""``/m/{token}``: the alarm's page on the phone (``api.mobile``), and its three forms.

No API token: the link's signed token is the credential, and it grants one thing only, the
alarm of its notification, to the person texted. Refused links (forged, expired, for a person no
longer on the roster) get a short page that names no alarm; an address that sends too many bad
tokens is refused for a while (``api.guesses``). A form is accepted only with the value the page
was rendered with (``api.mobile.form_value``), and not when the browser says it comes from
another site (``Sec-Fetch-Site``, ``Origin``); after acting, the page is shown again (POST, redirect,
GET), so reloading it acts no second time.
"""

from __future__ import annotations

import hmac
import logging
import math
import urllib.parse
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import mobile
from api.acting import Act, act
from api.deps import WorldDep, audit
from api.mobile import Grant, PageError
from api.replies import current_roster
from api.world import World
from examwatch import links
from examwatch.alarm import State
from examwatch.clock import wall_s
from examwatch.roster import Roster
from examwatch.store.lifecycle import AlarmError

router = APIRouter(prefix="/m", tags=["mobile"], include_in_schema=False)
log = logging.getLogger("examwatch.api.mobile")
TokenPath = Annotated[str, Path(max_length=64, description="the link's signed token")]
#: the page is private to its recipient: never cached, framed, indexed or sent on as a Referer
HEADERS = {
    "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff", "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}
DONE = {"acknowledge": "已确认，提醒已停止。", "comment": "备注已记录。", "resolve": "告警已关闭。"}


def _page(html: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})


def _refused(world: World, exc: PageError, headers: dict[str, str] | None = None) -> HTMLResponse:
    return _page(mobile.render(world, None, None, exc.message, notice_ok=False), exc.status, headers)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _open(world: World, request: Request, token: str) -> tuple[Roster, Grant]:
    """The roster and what ``token`` grants; PageError (429, 403, 410, 404) when it grants nothing."""
    client = _client(request)
    wait = world.guesses.blocked_for(client)
    if wait > 0:
        raise PageError(429, "尝试次数过多，请稍后再试。")
    try:
        g = links.verify(world.secret, token, world.clock.now())
    except links.LinkError as exc:
        world.guesses.failed(client)
        log.warning("mobile page: %s token from %s", exc, client)
        if str(exc) == "expired":
            raise PageError(410, "链接已过期。请以短信或指挥中心的最新通知为准。") from None
        raise PageError(403, "链接无效。") from None
    roster = current_roster(world)
    return roster, mobile.grant(world, roster, token, g.notification_id, g.expires_s)


def _retry_after(world: World, request: Request) -> dict[str, str]:
    wait = world.guesses.blocked_for(_client(request))
    return {"Retry-After": str(math.ceil(wall_s(world.clock, wait)))} if wait > 0 else {}


@router.get("/{token}", response_class=HTMLResponse)
def page(request: Request, world: WorldDep, token: TokenPath,
         done: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    """The alarm, its timeline and the forms to act on it."""
    try:
        roster, g = _open(world, request, token)
    except PageError as exc:
        return _refused(world, exc, _retry_after(world, request))
    return _page(mobile.render(world, roster, g, DONE.get(done or "", "")))


def _same_site(world: World, request: Request) -> bool:
    """Whether a form comes from this site (CSRF, besides the secret form value): browsers say where
    a POST comes from in Sec-Fetch-Site; older ones only in Origin, which is "null" under this
    page's no-referrer policy."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    ours = {request.headers.get("host", "")}
    if world.settings.api.public_url:
        ours.add(urllib.parse.urlsplit(world.settings.api.public_url).netloc)
    return urllib.parse.urlsplit(origin).netloc in ours


@router.post("/{token}", response_class=HTMLResponse)
def act_on(request: Request, world: WorldDep, token: TokenPath,
           form: Annotated[str, Form(max_length=64)],
           action: Annotated[Literal["acknowledge", "comment", "resolve"], Form()],
           comment: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Acknowledge, comment (acknowledging an unacknowledged alarm) or resolve, as the link's person."""
    request.state.actor = "mobile-page"
    if not _same_site(world, request):
        log.warning("mobile page: a form from another site (%s) refused", request.headers.get("origin"))
        return _refused(world, PageError(403, "请在告警页面内操作。"))
    try:
        roster, g = _open(world, request, token)
    except PageError as exc:
        return _refused(world, exc, _retry_after(world, request))
    request.state.actor = f"page:{g.person.id}"
    if not hmac.compare_digest(form.encode(), mobile.form_value(world, token, g.alarm).encode()):
        audit(request, alarm=g.alarm.id, notification=g.notification_id, refused="stale or foreign form")
        return _page(mobile.render(world, roster, g, "页面已过期：告警已有新进展或表单不属于此链接，请查看后再操作。",
                                   notice_ok=False), 409)
    text = comment.strip()
    if action == "comment" and not text:
        return _page(mobile.render(world, roster, g, "请填写备注。", notice_ok=False), 422)
    what: Act = action
    if action == "comment" and g.alarm.state in (State.FIRING, State.PENDING):
        what = "acknowledge"
    try:
        view = act(world, g.alarm.id, what, g.person.id, text)
    except AlarmError as exc:
        audit(request, alarm=g.alarm.id, notification=g.notification_id, refused=str(exc))
        return _page(mobile.render(world, roster, g, f"未能操作：{exc}", notice_ok=False), 409)
    audit(request, alarm=view.id, state=view.state, seq=view.seq, notification=g.notification_id, comment=text)
    return RedirectResponse(f"{urllib.parse.quote(token)}?done={action}", status_code=303, headers=HEADERS)
