"""Handling alarms from the phone, the notifier's side: escalation on request (reply ``0``, published by
the API), and the duty group chat's robot (WeCom, through Apprise) told the same alerts and all-clears.

The WeCom cloud cannot run here, so a fake of it does: an HTTPS proxy that answers Apprise's
``CONNECT qyapi.weixin.qq.com:443`` itself, with a throwaway certificate (the robot's URL says
``verify=no``), and records what the real robot API would have received.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from examwatch import control
from harness.notify_kit import PHONES, Processes, floods, notifications, publish, sms_to, transition
from harness.servers import Kannel, free_port, wait_for
from harness.stack import Stack


@pytest.fixture
def procs(stack: Stack) -> Iterator[Processes]:
    p = Processes(stack)
    yield p
    p.kill_all()


def test_reply_zero_escalates_to_the_next_level_at_once(stack: Stack, kannel: Kannel, procs: Processes) -> None:
    since = len(kannel.smsc.messages())
    procs.notifier(kannel, escalate_after_s=900.0)  # the timer alone would wait 15 minutes
    publish(stack.client("svc-rules"), [transition(701, 1, "firing", site="S02")])
    wait_for(lambda: sms_to(kannel, PHONES["chief-S02"], since), 10, "the alert")
    api = stack.client("svc-api")
    api.publish(control.ESCALATE, b"not json", qos=1).wait_for_publish(10)  # refused, logged, nothing else
    asked = time.monotonic()
    api.publish(control.ESCALATE, json.dumps({"alarm_id": 701, "by": "chief-S02"}), qos=1).wait_for_publish(10)
    wait_for(lambda: any("升级" in t for t in sms_to(kannel, PHONES["center"], since)), 10,
             "the escalation to the command center")
    assert time.monotonic() - asked < 5
    [row] = notifications(stack, kind="escalation")
    assert (row["alarm_id"], row["level"], row["address"]) == (701, 2, PHONES["center"])


def test_only_the_notifier_may_read_escalation_requests(stack: Stack) -> None:
    got: list[tuple[str, bytes]] = []
    subscribed: list[str] = []

    def listener(user: str) -> Any:
        c = stack.client(user, on_message=lambda _c, _u, m: got.append((user, m.payload)),
                         on_subscribe=lambda *_a: subscribed.append(user))
        c.subscribe("exam/v1/#", qos=1)  # everything the ACL lets it read
        return c

    for user in ("svc-ingest", "svc-rules", "svc-notifier"):
        listener(user)
    wait_for(lambda: len(subscribed) == 3, 10, "three subscriptions")
    stack.client("svc-rules").publish(control.ESCALATE, b'{"alarm_id": 1, "by": "x"}', qos=1).wait_for_publish(10)
    api = stack.client("svc-api")
    api.publish(control.ESCALATE, b'{"alarm_id": 2, "by": "y"}', qos=1).wait_for_publish(10)
    # Then a message all three may read, from the same publisher: once each has it, any copy of the
    # request meant for it has arrived before (the broker keeps one publisher's order).
    api.publish("exam/v1/_alarm/S01/sentinel/S01", b"end", qos=1).wait_for_publish(10)
    wait_for(lambda: sorted(u for u, p in got if p == b"end") == ["svc-ingest", "svc-notifier", "svc-rules"], 10,
             "the sentinel at all three")
    requests = [(u, p) for u, p in got if p != b"end"]
    assert requests == [("svc-notifier", b'{"alarm_id": 2, "by": "y"}')]  # and the rules engine may not write it


class FakeWeComCloud(ThreadingHTTPServer):
    """A fake of WeCom's robot API behind an HTTPS proxy: answers CONNECT for any host with TLS of its own
    and records every request's (path, JSON body); the real API answers ``{"errcode": 0}``."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (host, path, body)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_CONNECT(self) -> None:
                host = self.path.partition(":")[0]
                self.send_response(200, "Connection established")
                self.end_headers()
                wrapped = tls.wrap_socket(self.connection, server_side=True)
                reader = wrapped.makefile("rb")
                request = reader.readline().decode().split()
                headers = {}
                while (line := reader.readline().decode().strip()):
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", 0)))
                server.requests.append((host, request[1], json.loads(body)))
                answer = b'{"errcode":0,"errmsg":"ok"}'
                wrapped.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                + f"Content-Length: {len(answer)}\r\n\r\n".encode() + answer)
                wrapped.close()
                self.close_connection = True

            def log_message(self, *_args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [body["text"]["content"] for _h, _p, body in self.requests]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def wecom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeComCloud]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=qyapi.weixin.qq.com", "-keyout", str(key), "-out", str(cert)], check=True,
                   capture_output=True)
    cloud = FakeWeComCloud(cert, key)
    # The notifier started under this environment reaches "the cloud" through the fake; Kannel and
    # the broker are not reached through HTTP proxies (urllib3 and paho ignore these variables).
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{cloud.server_address[1]}")
    yield cloud
    cloud.stop()


def test_the_duty_group_chat_gets_the_alerts_and_all_clears(stack: Stack, kannel: Kannel, procs: Processes,
                                                              wecom: FakeWeComCloud) -> None:
    since = len(kannel.smsc.messages())
    procs.notifier(kannel, robot="wecombot://ROBOTKEY123?verify=no", remind_every_s=1.0, summary_delay_s=1.0)
    rules = stack.client("svc-rules")
    publish(rules, [transition(801, 1, "firing", site="S01")])
    wait_for(lambda: wecom.requests, 15, "the robot's message")
    host, path, _body = wecom.requests[0]
    assert (host, path) == ("qyapi.weixin.qq.com", "/cgi-bin/webhook/send?key=ROBOTKEY123")
    assert wecom.texts()[0].startswith("【考务告警】紧急 S01 人大附中 保密室市电中断")
    assert "回复" not in wecom.texts()[0]  # a group chat cannot reply by SMS
    wait_for(lambda: any("提醒" in t for t in sms_to(kannel, PHONES["chief-S01"], since)), 10, "the chief's reminder")
    publish(rules, [transition(801, 2, "resolved", site="S01")])
    wait_for(lambda: any("已恢复" in t for t in wecom.texts()), 10, "the robot's all-clear")
    assert [t.split()[0][:6] for t in wecom.texts()] == ["【考务告警】", "【考务恢复】"]  # no reminders
    robot_rows = [r for r in notifications(stack) if r["address"].startswith("robot:")]
    assert {r["address"] for r in robot_rows} == {"robot:group-S01:0"}  # the outbox never holds the key
    assert all("ROBOTKEY123" not in r["address"] + r["result"] for r in robot_rows)
    # A flood is one summary for the group, as for the phones.
    jammers = [transition(8100 + i, 1, "firing", site="S01", rule="jammer_shielding", subject=f"S01-R{i:03d}-JAM1")
               for i in range(60)]
    publish(rules, jammers)
    wait_for(lambda: any("汇总" in t for t in wecom.texts()), 20, "the robot's flood summary")
    wait_for(lambda: not [r for r in notifications(stack) if r["status"] == "queued"], 20, "the outbox drained")
    assert sum("汇总" in t for t in wecom.texts()) == 1
    # The summary, and only texts queued before the flood was seen (as its first
    # alarms arrived one by one); none once it was.
    [flood] = floods(stack, rule="jammer_shielding")
    alone = [r for r in notifications(stack, status="sent") if r["address"].startswith("robot:")
             and 8100 <= r["alarm_id"] < 8160]
    assert all(r["created_ns"] <= flood["opened_ns"] for r in alone), (alone, flood)
    assert sum("屏蔽信号不足" in t for t in wecom.texts()) == 1 + len(alone)
