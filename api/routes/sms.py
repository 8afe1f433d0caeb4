"""Kannel's callbacks: SMS replies from duty officers' phones, and delivery reports of the SMS sent.

Both are called by the gateway, not by people: they carry the callback key (``k``, derived from
the master secret; ``examwatch.kannel``) instead of an API token, and answer plain text.

- ``POST /sms/reply?k=&from=%p&to=%P&id=%I&smsc=%i``, the SMS text in the body: the answer is the
  reply SMS (``X-Kannel-Coding: 2``, one UCS-2 segment); empty for a number outside the roster.
  Every call is kept in ``sms_reply`` (the notifier's store), refusals included. Kannel retries
  a call that failed with the same ``id``: a reply already carried out is answered again, not
  carried out twice.
- ``GET /sms/dlr?n=<notification id>&t=%d&k=``: the report for one SMS the notifier sent
  (``notification.delivery``, ``delivered_ns``). A final report (delivered, failed) is not
  overwritten by a later intermediate one.
"""

from __future__ import annotations

import hmac
import logging
from email.message import Message
from typing import Annotated, cast

import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse

from api import replies
from api.deps import WorldDep, audit
from api.models.common import problem_responses
from api.world import World
from examwatch.clock import now_ns
from examwatch.store import writing
from examwatch.store.notify_models import Notification, SmsReply

router = APIRouter(prefix="/sms", tags=["sms"])
log = logging.getLogger("examwatch.api.sms")
_N, _R = cast(sa.Table, Notification.__table__), cast(sa.Table, SmsReply.__table__)
#: Kannel's delivery report types (dlr-mask bits) and what the notification's ``delivery`` says
DELIVERY = {1: "delivered", 2: "failed", 4: "buffered", 8: "submitted", 16: "failed"}
_FINAL = ("delivered", "failed")
_MAX_BODY = 65_536  # bytes: far beyond any SMS; what is longer is not read at all
_KEEP_TEXT = 500
KeyQuery = Annotated[str, Query(description="the callback key (`examwatch kannel-config` writes it into Kannel's "
                                            "URLs)", max_length=64)]
TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


def _check_key(world: World, k: str) -> None:
    if not hmac.compare_digest(k.encode(), world.callback_key.encode()):
        raise HTTPException(403, "wrong callback key")


def decode(body: bytes, content_type: str | None) -> str | None:
    """The text of an SMS as Kannel posts it: UTF-8, or UTF-16BE for UCS-2, or the charset named;
    None when it cannot be decoded (8-bit data, an unknown charset, bytes that do not fit it)."""
    msg = Message()
    msg["content-type"] = content_type or "text/plain; charset=UTF-8"
    if msg.get_content_type() != "text/plain":
        return None
    charset = msg.get_param("charset", "UTF-8")
    try:
        return body.decode(str(charset))
    except (LookupError, UnicodeDecodeError):
        return None


def _reply(world: World, sender: str, to: str, gateway_id: str | None, body: bytes,
           content_type: str | None) -> tuple[int, str]:
    """Audit, carry out, audit what came of it: (sms_reply id, the answer)."""
    store = world.notify
    text = decode(body, content_type)
    shown = text if text is not None else body[:_KEEP_TEXT].decode("latin-1")
    with writing(store) as conn:
        if gateway_id:
            seen = conn.execute(sa.select(_R.c.id, _R.c.outcome, _R.c.answer)
                                .where(_R.c.gateway_id == gateway_id)).first()
            if seen is not None and seen.outcome != "received":
                return seen.id, seen.answer
        else:
            seen = None
        if seen is None:
            row_id = conn.execute(sa.insert(_R).values(
                at_ns=now_ns(world.clock), sender=sender[:32], text=shown[:_KEEP_TEXT], outcome="received",
                gateway_id=gateway_id or None, answer="").returning(_R.c.id)).scalar_one()
        else:  # a call that died half-way: carry it out now
            row_id = seen.id
    outcome = replies.handle(world, sender, text)
    with writing(store) as conn:
        conn.execute(sa.update(_R).where(_R.c.id == row_id).values(
            outcome=outcome.outcome, person=outcome.person, alarm_id=outcome.alarm_id, answer=outcome.answer))
    log.info("sms reply %d from %s to %s: %s (alarm %s, %s)", row_id, sender, to, outcome.outcome, outcome.alarm_id,
             outcome.person or "not on the roster")
    return row_id, outcome.answer


@router.post("/reply", summary="An SMS received by the gateway (Kannel's sms-service)",
             response_class=PlainTextResponse,
             responses={200: {**TEXT, "description": "the reply SMS; empty: none is sent"},
                        **problem_responses(401, 403)})
async def sms_reply(
    request: Request, world: WorldDep, k: KeyQuery,
    sender: Annotated[str, Query(alias="from", max_length=64, description="the phone (%p)")],
    to: Annotated[str, Query(max_length=64, description="our number (%P)")] = "",
    id: Annotated[str, Query(max_length=64, description="the gateway's id of the SMS (%I)")] = "",
    smsc: Annotated[str, Query(max_length=64, description="the SMSC it came from (%i)")] = "",
) -> PlainTextResponse:
    """Acknowledge (`1 [code]`), acknowledge with a comment (`2 [code] comment`) or escalate (`0 [code]`)
    from the phone. The body is the SMS text; its charset is named in Content-Type (UTF-16BE for UCS-2)."""
    _check_key(world, k)
    request.state.actor = "sms-gateway"
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise HTTPException(413, f"an SMS is not {len(body)} bytes long")
    row_id, answer = await anyio.to_thread.run_sync(
        _reply, world, sender, to, id or None, body, request.headers.get("content-type"))
    audit(request, sms_reply=row_id, smsc=smsc)
    headers = {"X-Kannel-Coding": "2"} if answer else {}
    return PlainTextResponse(answer, headers=headers)


@router.get("/dlr", summary="A delivery report for one SMS sent (Kannel's dlr-url)", response_class=PlainTextResponse,
            responses={200: {**TEXT, "description": "recorded"}, **problem_responses(401, 403, 404)})
def sms_dlr(
    world: WorldDep, k: KeyQuery,
    n: Annotated[int, Query(ge=1, le=2**62, description="the notification's id")],
    t: Annotated[int, Query(description="Kannel's report type (%d): 1 delivered, 2 failed, 4 buffered, "
                                        "8 accepted by the SMSC, 16 rejected by the SMSC")],
) -> PlainTextResponse:
    """Record what the gateway says became of notification `n`."""
    _check_key(world, k)
    delivery = DELIVERY.get(t)
    if delivery is None:
        raise HTTPException(422, f"t: unknown delivery report type {t}")
    with writing(world.notify) as conn:
        current = conn.execute(sa.select(_N.c.delivery).where(_N.c.id == n)).scalar_one_or_none()
        if current is None:
            raise HTTPException(404, f"no notification {n}")
        if current in _FINAL and delivery not in _FINAL:
            return PlainTextResponse("kept")
        conn.execute(sa.update(_N).where(_N.c.id == n).values(delivery=delivery, delivered_ns=now_ns(world.clock)))
    return PlainTextResponse("ok")
