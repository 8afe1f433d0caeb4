"""`examwatch dashboards push` against a recording HTTP server that fakes Grafana's API.

No Grafana server can be installed here, so ``FakeGrafana`` answers the few endpoints the push
uses and records every request; the test checks what a real Grafana would have received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from dashboards import build
from dashboards.cli import app

# Runs in the venv that has the `grafana` extra (scripts/test makes .venv-grafana for it),
# because that extra replaces urllib3 and must not leak into the main environment.
pytestmark = pytest.mark.grafana


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGrafana:
    """A recording stand-in for Grafana's HTTP API (folders and dashboards)."""

    requests: list[Request] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    status: int = 200

    def serve(self) -> ThreadingHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> Request:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, dict(self.headers), json.loads(raw) if raw else None)
                fake.requests.append(req)
                return req

            def do_GET(self) -> None:
                req = self._record()
                if fake.status != 200:
                    self._answer(fake.status, {"message": "invalid API key"})
                elif req.path.removeprefix("/api/folders/") in fake.folders:
                    self._answer(200, {"uid": req.path.rsplit("/", 1)[1]})
                else:
                    self._answer(404, {"message": "folder not found"})

            def do_POST(self) -> None:
                req = self._record()
                if req.path == "/api/folders":
                    fake.folders.add(req.body["uid"])
                    self._answer(200, {"uid": req.body["uid"], "title": req.body["title"]})
                else:
                    uid = req.body["dashboard"]["uid"]
                    self._answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 1})

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    server = fake.serve()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_push_creates_folder_and_uploads_every_dashboard(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    result = CliRunner().invoke(app, ["push", "--url", url, "--token", "glsa_test"])
    assert result.exit_code == 0, result.output
    posts = [r for r in fake.requests if r.path == "/api/dashboards/db"]
    committed = build.load()
    assert sorted(r.body["dashboard"]["uid"] for r in posts) == sorted(d["uid"] for d in committed.values())
    for r in posts:
        assert r.headers["Authorization"] == "Bearer glsa_test"
        assert r.body["overwrite"] is True
        assert r.body["folderUid"] == "examwatch"
        original = next(d for d in committed.values() if d["uid"] == r.body["dashboard"]["uid"])
        assert r.body["dashboard"] == {**original, "id": None}
    assert [r.path for r in fake.requests[:2]] == ["/api/folders/examwatch", "/api/folders"]
    assert "pushed /d/examwatch-wall/x" in result.output

    fake.requests.clear()
    again = CliRunner().invoke(app, ["push", "--url", url, "--token", "glsa_test"])
    assert again.exit_code == 0
    assert not any(r.path == "/api/folders" for r in fake.requests), "an existing folder is reused"


def test_push_refused_is_one_line(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.status = 401
    result = CliRunner().invoke(app, ["push", "--url", url, "--token", "wrong"])
    assert result.exit_code == 3
    assert "answered 401" in result.output
    assert "Traceback" not in result.output
