"""Ask a running service to re-read its files (examwatch.control) and wait for its answer."""

from __future__ import annotations

import logging
import queue
import secrets
from typing import Literal

import paho.mqtt.client as paho
from pydantic import BaseModel, Field, ValidationError

from examwatch import control, mqtt
from examwatch.control import Reloadable, ReloadAnswer, ReloadRequest
from examwatch.settings import Settings

log = logging.getLogger("examwatch.api")
_STEP_S = 3.0  # connecting, subscribing, publishing: each bounded


class ReloadOutcome(BaseModel):
    """What became of a reload request."""

    service: Reloadable
    state: Literal["applied", "refused", "no_answer", "broker_unreachable"] = Field(
        description="applied: the service runs the new files; refused: it keeps the old ones (see detail); "
        "no_answer: it did not answer in time (it reads the files when it next starts or gets the request); "
        "broker_unreachable: the broker did not confirm the request (see detail)"
    )
    detail: str


def request_reload(settings: Settings, service: Reloadable, by: str) -> ReloadOutcome:
    """Publish a reload request to ``service`` and wait up to ``api.reload_wait_s`` for its answer."""
    request = ReloadRequest(id=secrets.token_hex(8), by=by[:128])  # a CLI-made token name may be longer
    answers: queue.Queue[ReloadAnswer] = queue.Queue()
    suback: queue.Queue[bool] = queue.Queue()

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        try:
            answer = ReloadAnswer.model_validate_json(msg.payload)
        except ValidationError:
            log.warning("not a reload answer on %s", msg.topic)
            return
        if answer.id == request.id:  # the retained answer to an older request is not ours
            answers.put(answer)

    c = mqtt.service_client(settings, "api", f"api-reload-{request.id}")
    c.on_message = on_message
    c.on_subscribe = lambda _c, _u, _mid, codes, _p: suback.put(all(not rc.is_failure for rc in codes))
    try:
        try:
            _send(c, settings, service, request, suback)
        except (mqtt.ConnectRefused, RuntimeError, ValueError, OSError) as exc:  # OSError: timeouts, refusals
            return ReloadOutcome(service=service, state="broker_unreachable",
                                 detail=f"the request was not confirmed ({exc}); {service} reads "
                                        f"{control.RELOADS[service]} at its next start")
        wait_s = settings.api.reload_wait_s
        try:
            answer = answers.get(timeout=wait_s)
        except queue.Empty:
            return ReloadOutcome(service=service, state="no_answer",
                                 detail=f"no answer from {service} within {wait_s:g} s; it reads "
                                        f"{control.RELOADS[service]} when it gets the request or next starts")
    finally:
        c.disconnect()
        c.loop_stop()
    return ReloadOutcome(service=service, state="applied" if answer.ok else "refused", detail=answer.detail)


def _send(c: paho.Client, settings: Settings, service: Reloadable, request: ReloadRequest,
          suback: queue.Queue[bool]) -> None:
    """Connect, subscribe to the answers (before asking, so none is missed), then publish the request."""
    mqtt.connect_and_wait(c, settings.mqtt, clean_start=True, timeout_s=_STEP_S)
    c.subscribe(control.answer_topic(service), qos=1)
    try:
        if not suback.get(timeout=_STEP_S):
            raise PermissionError(f"the broker refused svc-api the topic {control.answer_topic(service)}")
    except queue.Empty:
        raise TimeoutError("the broker did not confirm the subscription") from None
    info = c.publish(control.reload_topic(service), request.model_dump_json().encode(), qos=1)
    info.wait_for_publish(_STEP_S)
    if not info.is_published():
        raise TimeoutError(f"the broker did not confirm the request within {_STEP_S:g} s")
