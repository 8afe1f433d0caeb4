"""Replies from phones through real Kannel (fakesmsc → bearerbox → smsbox → the API) and delivery reports.

Each reply is one line sent on Kannel's receive-only fake SMSC link; the API's answer comes back
through Kannel to the fakesmsc that prints every text sent, where it is counted. The notifier's
part (its view of an alarm with a short code, the alert it sent) is recorded by ``told``.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any, cast

import httpx
import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa

from examwatch import control, links
from examwatch.alarm import ALARM_TOPICS, Severity
from examwatch.store.access import Role
from examwatch.store.lifecycle import history
from examwatch.store.notify_models import Notification, SmsReply
from harness.api_stack import ApiStack
from harness.notify_kit import PHONES
from harness.servers import Kannel, wait_for

_R, _N = cast(sa.Table, SmsReply.__table__), cast(sa.Table, Notification.__table__)
STRANGER = "13012345678"


@pytest.fixture(scope="module")
def phone(api: ApiStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    """Kannel configured as `examwatch kannel-config` does, calling this module's API."""
    k = Kannel(tmp_path_factory.mktemp("kannel"), api_url=api.url, secret=api.secret)
    k.start()
    yield k
    k.stop()


@pytest.fixture(scope="module")
def heard(api: ApiStack) -> queue.Queue[tuple[str, dict[str, Any]]]:
    """Every alarm transition and escalation request on the broker, as the notifier hears them."""
    got: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        got.put((msg.topic, json.loads(msg.payload)))

    def on_connect(c: paho.Client, *_: object) -> None:  # and again after any reconnection
        c.subscribe([(ALARM_TOPICS, 1), (control.ESCALATE, 1)])

    subscribed = threading.Event()
    api.client("svc-notifier", on_message=on_message, on_subscribe=lambda *_: subscribed.set(), on_connect=on_connect)
    assert subscribed.wait(10), "the broker did not confirm the subscription"
    return got


def answers_to(kannel: Kannel, number: str) -> list[str]:
    return [text for _, to, text in kannel.smsc.messages() if to == number]


def reply_and_wait(kannel: Kannel, number: str, text: str) -> str:
    """Send ``text`` from ``number`` and return the answer it gets."""
    before = len(answers_to(kannel, number))
    kannel.reply(number, text)
    wait_for(lambda: len(answers_to(kannel, number)) > before, 15, f"an answer to {text!r} from {number}")
    answer = answers_to(kannel, number)[before]
    assert len(answer) <= 70, answer
    return answer


def replies(api: ApiStack, sender: str) -> list[Any]:
    with api.notes.connect() as conn:
        return list(conn.execute(sa.select(_R).where(_R.c.sender == sender).order_by(_R.c.id)))


def state(api: ApiStack, alarm_id: int) -> list[tuple[str, str, str]]:
    return [(t.state, t.by, t.comment) for t in history(api.store, alarm_id)]


def next_transition(heard: queue.Queue[tuple[str, dict[str, Any]]], alarm_id: int, seq: int) -> dict[str, Any]:
    while True:
        topic, body = heard.get(timeout=10)
        if topic.startswith("exam/v1/_alarm/") and body["alarm_id"] == alarm_id and body["seq"] == seq:
            return body


def test_reply_with_code_acknowledges_publishes_and_confirms(api: ApiStack, phone: Kannel, heard: Any) -> None:
    alarm = api.open_alarm("S01-VAULT-PWR1", "power_mains_lost", severity=Severity.CRITICAL)
    api.told(alarm, "K7", "chief-S01", PHONES["chief-S01"])
    answer = reply_and_wait(phone, PHONES["chief-S01"], "1 k7")
    assert answer.startswith("已确认告警K7（S01 市电中断）"), answer
    assert state(api, alarm)[-1] == ("acknowledged", "chief-S01", "")
    published = next_transition(heard, alarm, 2)
    assert (published["state"], published["by"]) == ("acknowledged", "chief-S01")
    (row,) = replies(api, PHONES["chief-S01"])[-1:]
    assert (row.outcome, row.person, row.alarm_id, row.text, row.answer) == ("ack", "chief-S01", alarm, "1 k7", answer)

    again = reply_and_wait(phone, PHONES["chief-S01"], "１，K7")  # full-width digit, Chinese comma
    assert again.startswith("告警K7已由S01主考确认"), again
    assert len(state(api, alarm)) == 2, "nothing changed"


def test_unknown_number_gets_silence_and_is_audited(api: ApiStack, phone: Kannel) -> None:
    alarm = api.open_alarm("S01-R01-CAM1", "camera_offline")
    api.told(alarm, "Q2", "chief-S01", PHONES["chief-S01"])
    phone.reply(STRANGER, "1 Q2")
    wait_for(lambda: [r.outcome for r in replies(api, STRANGER)] == ["refused"], 15, "the refusal to be audited")
    # A later reply from a roster number is answered; by then an answer to the stranger would have come too.
    reply_and_wait(phone, PHONES["chief-S02"], "hello")
    assert answers_to(phone, STRANGER) == []
    (row,) = replies(api, STRANGER)
    assert (row.person, row.alarm_id, row.answer, row.text) == (None, None, "", "1 Q2")
    assert len(state(api, alarm)) == 1, "nothing changed"


def test_someone_elses_code_is_refused_without_naming_the_alarm(api: ApiStack, phone: Kannel) -> None:
    alarm = api.open_alarm("S01-R02-JAM1", "jammer_offline")
    api.told(alarm, "M5", "chief-S01", PHONES["chief-S01"])
    answer = reply_and_wait(phone, PHONES["chief-S02"], "1 M5")  # S02's chief: no route to S01's alarms
    assert answer.startswith("编码M5无效"), answer
    assert "S01" not in answer
    assert replies(api, PHONES["chief-S02"])[-1].outcome == "refused"
    assert len(state(api, alarm)) == 1
    # The level-2 center is on a route for every site, but the notifier has told only level 1 so far.
    assert reply_and_wait(phone, PHONES["center"], "1 M5").startswith("编码M5无效")
    assert len(state(api, alarm)) == 1


def test_without_a_code_several_alarms_are_listed_then_one_is_picked(api: ApiStack, phone: Kannel) -> None:
    a = api.open_alarm("S03-R01-JAM1", "jammer_offline")
    b = api.open_alarm("S03-R02-JAM1", "jammer_offline")
    api.told(a, "A1", "chief-S03", PHONES["chief-S03"])
    api.told(b, "B2", "chief-S03", PHONES["chief-S03"])
    answer = reply_and_wait(phone, PHONES["chief-S03"], "1")
    assert answer.startswith("您有2条告警待处理"), answer
    assert "A1" in answer
    assert "B2" in answer
    assert replies(api, PHONES["chief-S03"])[-1].outcome == "ambiguous"
    assert len(state(api, a)) == len(state(api, b)) == 1

    answer = reply_and_wait(phone, PHONES["chief-S03"], "2 B2 已到现场，更换电源")
    assert answer.startswith("已确认告警B2"), answer
    assert "备注" in answer
    assert state(api, b)[-1] == ("acknowledged", "chief-S03", "已到现场，更换电源")
    answer = reply_and_wait(phone, PHONES["chief-S03"], "2 天线已复位")  # the only unacknowledged one now: A1
    assert state(api, a)[-1] == ("acknowledged", "chief-S03", "天线已复位"), answer
    answer = reply_and_wait(phone, PHONES["chief-S03"], "2 B2 恢复正常")  # B2 is acknowledged: a comment
    assert answer == "已为告警B2记录备注"
    assert state(api, b)[-1] == ("acknowledged", "chief-S03", "恢复正常")


def test_zero_asks_the_notifier_to_escalate(api: ApiStack, phone: Kannel, heard: Any) -> None:
    alarm = api.open_alarm("S02-VAULT-PWR1", "power_on_ups", severity=Severity.CRITICAL)
    api.told(alarm, "E9", "chief-S02", PHONES["chief-S02"])
    answer = reply_and_wait(phone, PHONES["chief-S02"], "0 E9")
    assert answer.startswith("已请求立即升级告警E9"), answer
    while True:
        topic, body = heard.get(timeout=10)
        if topic == control.ESCALATE:
            break
    assert body == {"alarm_id": alarm, "by": "chief-S02"}
    assert len(state(api, alarm)) == 1, "escalating is not acknowledging"


def test_bad_replies_get_a_short_answer_and_change_nothing(api: ApiStack, phone: Kannel) -> None:
    alarm = api.open_alarm("S02-R01-JAM1", "jammer_offline")
    api.told(alarm, "G4", "chief-S02", PHONES["chief-S02"])
    number = PHONES["chief-S02"]
    assert reply_and_wait(phone, number, "ok thanks").startswith("未能识别")
    assert reply_and_wait(phone, number, "1 ZZZ").startswith("编码ZZZ无效")
    assert reply_and_wait(phone, number, "1 " + "很长" * 200).startswith("回复过长")
    assert reply_and_wait(phone, number, "2").startswith("请在2后写备注")
    raw = "1 G4".encode("utf-16-be")
    phone.reply(number, "".join(f"%{b:02X}" for b in raw), kind="data")  # 8-bit data: no charset to read it by
    wait_for(lambda: replies(api, number)[-1].outcome == "bad_encoding", 15, "the 8-bit reply to be audited")
    assert len(state(api, alarm)) == 1, "nothing changed"
    outcomes = [r.outcome for r in replies(api, number)[-5:]]
    assert outcomes == ["garbage", "unknown_code", "too_long", "empty_comment", "bad_encoding"]


def test_ucs2_reply_and_a_retried_callback(api: ApiStack) -> None:
    """What Kannel posts for a UCS-2 SMS it could not recode, and the same call made twice (its retry)."""
    alarm = api.open_alarm("S03-R03-JAM1", "jammer_offline")
    api.told(alarm, "U8", "chief-S03", PHONES["chief-S03"])
    url = f"{api.url}/sms/reply"
    params = {"k": links.callback_key(api.secret), "from": "+86" + PHONES["chief-S03"],
              "to": "10690000", "id": "7d0c2a52-retried"}
    headers = {"Content-Type": 'text/plain; charset="UTF-16BE"'}
    first = httpx.post(url, params=params, content="1 U8".encode("utf-16-be"), headers=headers)
    assert first.status_code == 200
    assert first.headers["x-kannel-coding"] == "2"
    assert first.text.startswith("已确认告警U8")
    second = httpx.post(url, params=params, content="1 U8".encode("utf-16-be"), headers=headers)
    assert second.text == first.text
    assert len(state(api, alarm)) == 2, "acknowledged once"
    assert len([r for r in replies(api, "+86" + PHONES["chief-S03"]) if r.alarm_id == alarm]) == 1
    wrong = httpx.post(url, params={**params, "k": "not-the-key"}, content=b"1")
    assert wrong.status_code == 403
    assert wrong.headers["content-type"] == "application/problem+json"


def test_delivery_reports_are_recorded_once_final(api: ApiStack, phone: Kannel) -> None:
    alarm = api.open_alarm("S01-R03-JAM1", "jammer_offline")
    n = api.told(alarm, "D3", "chief-S01", PHONES["chief-S01"])
    key = phone.key

    def dlr(t: int, nid: int = n, k: str = key) -> httpx.Response:
        return httpx.get(f"{api.url}/sms/dlr", params={"n": nid, "t": t, "k": k})

    def delivery() -> tuple[str, int | None]:
        with api.notes.connect() as conn:
            row = conn.execute(sa.select(_N.c.delivery, _N.c.delivered_ns).where(_N.c.id == n)).one()
        return row.delivery, row.delivered_ns

    assert dlr(8).text == "ok"
    assert delivery()[0] == "submitted"
    assert dlr(1).text == "ok"
    done, at = delivery()
    assert done == "delivered"
    assert at is not None
    assert dlr(4).text == "kept", "a late intermediate report does not undo delivery"
    assert delivery() == (done, at)
    assert dlr(1, k="nope").status_code == 403
    assert dlr(1, nid=99_999_999).status_code == 404
    assert dlr(3).status_code == 422


def test_acknowledging_through_the_endpoint_is_published_at_once(api: ApiStack, heard: Any) -> None:
    alarm = api.open_alarm("S02-R02-CAM1", "camera_offline")
    r = api.http(Role.OPERATOR).post(f"/alarms/{alarm}/acknowledge", json={"comment": "on my way"})
    assert r.status_code == 200
    published = next_transition(heard, alarm, 2)
    assert (published["state"], published["by"], published["comment"]) == ("acknowledged", "test-operator",
                                                                            "on my way")
