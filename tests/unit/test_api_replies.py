"""Acknowledging from the phone without servers: reply parsing, answers, numbers, the guess limit,
the page on a drill clock, and the generated Kannel configuration."""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import sms_text
from api.app import create_app
from api.duty import normalise_phone, people_of
from api.guesses import Guesses
from api.routes.sms import decode
from api.sms_text import NotUnderstood, Reply, parse
from api.world import World
from examwatch import kannel, links
from examwatch.clock import DrillClock
from examwatch.roster import Roster
from examwatch.settings import load_settings
from harness.servers import free_port, wait_for

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(("text", "action", "code", "words"), [
    ("1", "ack", None, ""),
    (" 1 ", "ack", None, ""),
    ("1 a3f", "ack", "A3F", "a3f"),
    ("１，Ａ３Ｆ", "ack", "A3F", "Ａ３Ｆ"),
    ("2 B2 已到现场，更换电源", "comment", "B2", "B2 已到现场，更换电源"),
    ("2：已到现场", "comment", None, "已到现场"),
    ("0 E9", "escalate", "E9", "E9"),
    ("0", "escalate", None, ""),
])
def test_replies_are_read_as_typed_on_any_phone(text: str, action: str, code: str | None, words: str) -> None:
    r = parse(text)
    assert isinstance(r, Reply)
    assert (r.action, r.code, r.whole) == (action, code, words)


def test_a_comment_keeps_its_punctuation_after_the_code() -> None:
    r = parse("2 B2 已到现场，更换电源")
    assert isinstance(r, Reply)
    assert r.rest == "已到现场，更换电源"


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"), ("   \n", "empty"), ("ok", "garbage"), ("1A3F", "garbage"), ("3", "garbage"),
    ("收到", "garbage"), ("1 " + "长" * 299, "too_long"), ("\x00\x01", "empty"),
])
def test_what_is_not_a_reply(text: str, reason: str) -> None:
    assert parse(text) == NotUnderstood(reason)  # type: ignore[arg-type]


def test_every_answer_fits_one_ucs2_segment() -> None:
    longest_code, longest_what = "ABCDEFGH", "S01 " + "很长的告警名称" * 4
    answers = [sms_text.HELP, sms_text.TOO_LONG, sms_text.BAD_ENCODING, sms_text.NO_OPEN, sms_text.EMPTY_COMMENT,
               sms_text.ambiguous([longest_code] * 30), sms_text.ambiguous(["A1"] * 3, "comment")]
    for name, fn in inspect.getmembers(sms_text, inspect.isfunction):
        params = inspect.signature(fn).parameters
        if fn.__module__ != sms_text.__name__ or name in ("parse", "normalise", "fit", "ambiguous"):
            continue
        args = {"code": longest_code, "what": longest_what, "by": "指挥中心白班值班员甲乙丙丁"}
        answers.append(fn(**{k: args[k] for k in params}))
    assert len(answers) > 14
    for a in answers:
        assert 0 < len(a) <= sms_text.SEGMENT, a


def test_numbers_match_with_or_without_the_country_code() -> None:
    assert normalise_phone("+8613900000001") == normalise_phone("008613900000001") == "13900000001"
    assert normalise_phone("8613900000001") == "13900000001"
    assert normalise_phone("95598000001") == "95598000001"
    roster = Roster.model_validate({
        "people": [{"id": "a", "name": "甲", "phones": ["13900000001"]},
                   {"id": "b", "name": "乙", "phones": ["+8613900000001", "13900000009"]}],
        "routes": [{"name": "r", "level": 1, "people": ["a", "b"]}]})
    assert [p.id for p in people_of(roster, "8613900000001")] == ["a", "b"], "a shared phone speaks for both"
    assert people_of(roster, "13900000002") == []
    assert people_of(roster, "") == []


def test_bodies_are_decoded_by_the_charset_kannel_names() -> None:
    assert decode("1 甲".encode("utf-16-be"), 'text/plain; charset="UTF-16BE"') == "1 甲"
    assert decode("1 甲".encode(), "text/plain; charset=UTF-8") == "1 甲"
    assert decode("1 甲".encode(), None) == "1 甲"
    assert decode(b"\x00\x31", "application/octet-stream") is None
    assert decode(b"\xff\xfe\xfd", "text/plain; charset=UTF-8") is None
    assert decode(b"1", "text/plain; charset=no-such-charset") is None


def test_guesses_are_refused_for_a_window_on_the_clock() -> None:
    clock = DrillClock(1_800_000_000.0, time.time(), speed=1000)  # a drill clock: the window passes in wall ms
    g = Guesses(clock, limit=3, window_s=60)
    for _ in range(3):
        assert g.blocked_for("10.0.0.1") == 0
        g.failed("10.0.0.1")
    assert g.blocked_for("10.0.0.1") > 0
    assert g.blocked_for("10.0.0.2") == 0, "one address's guesses do not block another"
    wait_for(lambda: g.blocked_for("10.0.0.1") == 0, 5, "60 s of the drill clock (60 ms of wall time) to pass")


def _world(tmp_path: Path, **over: object) -> World:
    settings = load_settings(None, mode="demo", inventory=str(ROOT / "config/district.yaml"),
                             timetable=str(ROOT / "config/timetable.yaml"),
                             influx={"url": f"http://127.0.0.1:{free_port()}", "timeout_s": 1},
                             mqtt={"port": free_port()},
                             store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
                             notify={"roster": str(ROOT / "config/roster.yaml")},
                             api={"drills_dir": str(tmp_path / "drills"), "page_guesses": 3}, **over)
    return World.open(settings, None)


def test_bad_tokens_from_one_address_are_refused_with_429(tmp_path: Path) -> None:
    world = _world(tmp_path)
    client = TestClient(create_app(world))
    for i in range(3):
        r = client.get(f"/m/{'A' * 15}{i}")
        assert r.status_code == 403
        assert "链接无效" in r.text
    blocked = client.get("/m/" + links.sign(world.secret, 1, time.time() + 60))
    assert blocked.status_code == 429, "even a good token, once the address is guessing"
    assert int(blocked.headers["retry-after"]) > 0


def test_link_expiry_is_judged_on_the_service_clock(tmp_path: Path) -> None:
    # A drill clock standing a day ahead of the wall: a link valid for an hour of wall time has expired on it.
    ahead = time.time() + 86_400
    from datetime import UTC, datetime  # noqa: PLC0415 - only this test builds clock settings

    world = _world(tmp_path, clock={"start": datetime.fromtimestamp(ahead, UTC).isoformat(),
                                    "wall_start": datetime.fromtimestamp(time.time(), UTC).isoformat()})
    client = TestClient(create_app(world))
    r = client.get("/m/" + links.sign(world.secret, 1, time.time() + 3600))
    assert r.status_code == 410
    r = client.get("/m/" + links.sign(world.secret, 1, ahead + 3600))
    assert r.status_code == 404, "valid on the clock: refused only because notification 1 does not exist"


def test_generated_kannel_config_wires_replies_and_sending(tmp_path: Path) -> None:
    settings = load_settings(None, mode="demo", notify={"kannel_url": "http://127.0.0.1:18013/cgi-bin/sendsms",
                                                        "kannel_username": "examwatch", "kannel_password": "pw-1"},
                             api={"port": 18080})
    lay = kannel.layout(settings, spool_dir=tmp_path / "spool", log_dir=tmp_path, fake_smsc_port=18016,
                        phones_port=18017)
    path = kannel.write(lay, tmp_path)
    text = path.read_text()
    assert path.stat().st_mode & 0o077 == 0, "it holds passwords and the callback key"
    key = links.callback_key(settings.secret.get_secret_value())
    assert f'post-url = "http://127.0.0.1:18080/sms/reply?k={key}&from=%p&to=%P&id=%I&smsc=%i"' in text
    assert "sendsms-port = 18013" in text
    assert "admin-port = 18014" in text
    assert "smsbox-port = 18015" in text
    assert "omit-empty = true" in text
    assert "max-messages = 1" in text
    assert "accept-x-kannel-headers = true" in text
    assert text.count("group = smsc") == 2
    assert "allowed-smsc-id = examwatch-receive-only" in text
    assert kannel.dlr_url(lay.api_url, key, 42) == f"http://127.0.0.1:18080/sms/dlr?n=42&t=%d&k={key}"
    with pytest.raises(kannel.KannelConfigError, match=r"notify\.kannel_url"):
        kannel.layout(load_settings(None, mode="demo", notify={"kannel_url": "http://10.0.0.1/x"}),
                      spool_dir=tmp_path, log_dir=tmp_path, fake_smsc_port=1)
    with pytest.raises(kannel.KannelConfigError, match="either"):
        kannel.layout(settings, spool_dir=tmp_path, log_dir=tmp_path)


def test_replies_and_delivery_reports_go_to_their_own_smsbox(tmp_path: Path) -> None:
    """The sending smsbox's link carries sendsms alone: everything received is routed to the other box."""
    settings = load_settings(None, mode="demo", notify={"kannel_url": "http://127.0.0.1:18013/cgi-bin/sendsms",
                                                        "kannel_username": "examwatch", "kannel_password": "pw-1"})
    lay = kannel.layout(settings, spool_dir=tmp_path / "spool", log_dir=tmp_path, fake_smsc_port=18016,
                        phones_port=18017)
    sending = kannel.write(lay, tmp_path).read_text()
    receiving = (tmp_path / kannel.INBOUND_CONF).read_text()
    assert (tmp_path / kannel.INBOUND_CONF).stat().st_mode & 0o077 == 0
    route = 'group = smsbox-route\nsmsbox-id = inbound\nsmsc-id = "fake;phones"\n'
    assert route in sending, "bearerbox reads the route from kannel.conf"
    box = receiving[receiving.index("group = smsbox\n"):]
    assert box.startswith("group = smsbox\nsmsbox-id = inbound\n")
    assert "sendsms-port" not in box, "the receiving box serves no sendsms"
    assert "smsbox-id" not in sending[sending.index("group = smsbox\n"):], \
        "the sending box has no id: its delivery reports follow the route, not the box that sent"
    assert "group = sms-service" in receiving
    assert "group = sms-service" in sending, "an SMS that reaches the sending box anyway is still answered"


def test_the_operators_smsc_ids_are_routed_and_a_group_without_one_is_refused(tmp_path: Path) -> None:
    settings = load_settings(None, mode="demo", notify={"kannel_url": "http://127.0.0.1:18013/cgi-bin/sendsms",
                                                        "kannel_username": "examwatch", "kannel_password": "pw-1"})
    include = tmp_path / "smsc.conf"
    include.write_text('# the operator\ngroup = smsc\nsmsc = smpp\nsmsc-id = "cmcc"\nhost = 10.0.0.1\n\n'
                       'group = smsc\nsmsc = smpp\nsmsc-id = unicom\n', encoding="utf-8")
    lay = kannel.layout(settings, spool_dir=tmp_path / "spool", log_dir=tmp_path, smsc_include=include)
    assert kannel.inbound_ids(lay) == ("cmcc", "unicom")
    assert 'smsc-id = "cmcc;unicom"' in kannel.config_text(lay)
    include.write_text("group = smsc\nsmsc = smpp\nsmsc-id = cmcc\n\ngroup = smsc\nsmsc = smpp\nhost = x\n",
                       encoding="utf-8")
    with pytest.raises(kannel.KannelConfigError, match=r"smsc\.conf: line 5: .*no smsc-id"):
        kannel.layout(settings, spool_dir=tmp_path, log_dir=tmp_path, smsc_include=include)
    include.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(kannel.KannelConfigError, match="no `group = smsc`"):
        kannel.layout(settings, spool_dir=tmp_path, log_dir=tmp_path, smsc_include=include)
    with pytest.raises(kannel.KannelConfigError, match="cannot be read"):
        kannel.layout(settings, spool_dir=tmp_path, log_dir=tmp_path, smsc_include=tmp_path / "missing.conf")
