"""The Apprise provider through the real notifier, to a fake gateway: a local HTTP server that records requests.

Twilio, SMPP or SMSEagle cannot run here; Apprise's generic ``json://`` plugin posts to whatever
URL it is given, so a recording server stands in for the gateway and shows what Apprise sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.notify_kit import PHONES, Processes, notifications, publish, transition
from harness.servers import free_port, wait_for
from harness.stack import Stack


class FakeGateway(ThreadingHTTPServer):
    """A fake SMS gateway: records (path, JSON body) of every POST and answers 200."""

    def __init__(self, port: int | None = None) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", port or free_port()), Handler)

    def start(self) -> FakeGateway:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    g = FakeGateway().start()
    yield g
    g.stop()


def test_apprise_url_carries_the_alert_to_the_phone(stack: Stack, gateway: FakeGateway) -> None:
    procs = Processes(stack)
    try:
        url = f"json://127.0.0.1:{gateway.server_address[1]}/sms/{{phone}}"
        procs.notifier(None, provider="apprise", apprise_url=url)
        publish(stack.client("svc-rules"), [transition(501, 1, "firing", site="S02")])
        wait_for(lambda: gateway.requests, 15, "Apprise to post to the fake gateway")
        [(path, body)] = gateway.requests
        assert path == f"/sms/{PHONES['chief-S02']}"
        assert body["message"].startswith("【考务告警】紧急 S02 中关村中学 保密室市电中断")
        wait_for(lambda: [r["status"] for r in notifications(stack)] == ["sent"], 10, "the row marked sent")
        assert notifications(stack)[0]["result"] == "apprise: accepted"
    finally:
        procs.kill_all()


def test_apprise_gateway_down_is_retried_not_lost(stack: Stack) -> None:
    procs = Processes(stack)
    try:
        port = free_port()  # nothing listens here until the gateway starts
        procs.notifier(None, provider="apprise", apprise_url=f"json://127.0.0.1:{port}/sms/{{phone}}")
        publish(stack.client("svc-rules"), [transition(601, 1, "firing", site="S01")])
        wait_for(lambda: notifications(stack) and notifications(stack)[0]["attempts"] >= 2, 15, "failed attempts")
        assert notifications(stack)[0]["status"] == "queued"
        assert "Connection" in notifications(stack)[0]["result"]
        late = FakeGateway(port).start()
        try:
            wait_for(lambda: late.requests, 15, "the retried post")
            assert len(late.requests) == 1
        finally:
            late.stop()
    finally:
        procs.kill_all()
