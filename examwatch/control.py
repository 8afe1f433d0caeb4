"""Live reloads over MQTT: the API asks a service to re-read its files, and the service answers.

- ``exam/v1/_control/reload/{service}``: the request (QoS 1, not retained), ``{"id", "by", "at_ms"}``.
  The rules engine reads it through its shared subscription, in order with telemetry; the
  notifier subscribes to its own.
- ``exam/v1/_control/reloaded/{service}``: the answer (QoS 1, retained), ``{"id", "service", "ok",
  "detail", "at_ms"}``. ``ok`` false means the files were refused and the running ones stay.

A request sent while a service is stopped waits in its persistent session and is answered after
it starts. Reloading twice is harmless, so a request redelivered after a crash is simply obeyed again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

import paho.mqtt.client as paho
from pydantic import BaseModel, ConfigDict, Field

from examwatch import topics

Reloadable = Literal["rules", "notifier"]
#: what each reloadable service re-reads
RELOADS: dict[str, str] = {"rules": "the rules files", "notifier": "the duty roster"}


_REQUEST, _ANSWER = f"{topics.ROOT}/_control/reload", f"{topics.ROOT}/_control/reloaded"
#: every request topic (the API's ACL)
REQUESTS = f"{_REQUEST}/+"


#: A duty officer asks, by SMS reply ``0``, that an alarm be escalated now: the API publishes
#: ``{"alarm_id": N, "by": "<person id>"}`` here (QoS 1, not retained) and the notifier tells the
#: next roster level at once.
ESCALATE = f"{topics.ROOT}/_control/escalate/notifier"


def reload_topic(service: Reloadable) -> str:
    return f"{_REQUEST}/{service}"


def answer_topic(service: Reloadable) -> str:
    return f"{_ANSWER}/{service}"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1, max_length=64, description="the request's id, repeated in its answer")
    at_ms: int = Field(default_factory=lambda: time.time_ns() // 1_000_000, description="epoch ms")


class ReloadRequest(_Message):
    by: str = Field(max_length=128, description="who asked (an API token's name)")


class ReloadAnswer(_Message):
    service: Reloadable
    ok: bool = Field(description="false: the files were refused and the running ones stay")
    detail: str = Field(max_length=2000, description="what is loaded now, or why the files were refused")


def parse_request(payload: bytes) -> ReloadRequest | None:
    """The request in ``payload``; None when it is not one (the caller logs and drops it)."""
    try:
        return ReloadRequest.model_validate_json(payload)
    except ValueError:
        return None


def answer(service: Reloadable, request: ReloadRequest, ok: bool, detail: str) -> tuple[str, bytes]:
    """The topic and payload of the answer to ``request``."""
    reply = ReloadAnswer(id=request.id, service=service, ok=ok, detail=detail[:2000])
    return answer_topic(service), reply.model_dump_json().encode()


def obey(service: Reloadable, payload: bytes, reload: Callable[[], tuple[bool, str]], client: paho.Client,
         log: logging.Logger) -> None:
    """Carry out the request in ``payload`` with ``reload`` (which says ok and what it loaded, or
    why not) and publish the answer, retained; a payload that is not a request is logged and dropped."""
    request = parse_request(payload)
    if request is None:
        log.error("not a reload request on %s, dropped", reload_topic(service))
        return
    log.info("reload requested by %s (%s)", request.by, request.id)
    ok, detail = reload()
    topic, reply = answer(service, request, ok, detail)
    client.publish(topic, reply, qos=1, retain=True)
