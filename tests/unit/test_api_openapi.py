"""The app in-process (no servers): a complete OpenAPI document, and problem details when InfluxDB is down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.world import World
from examwatch.settings import load_settings
from examwatch.store.access import Role, create_token
from harness.servers import free_port

ROOT = Path(__file__).parents[2]


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = load_settings(None, mode="demo", inventory=str(ROOT / "config/district.yaml"),
                             timetable=str(ROOT / "config/timetable.yaml"),
                             influx={"url": f"http://127.0.0.1:{free_port()}", "timeout_s": 1},
                             store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
                             api={"drills_dir": str(tmp_path / "drills")})
    world = World.open(settings, None)
    c = TestClient(create_app(world))
    c.headers["Authorization"] = "Bearer " + create_token(world.store, "t", Role.ADMIN, "test")[1]
    return c


def test_openapi_document_is_complete(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    ops = [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()]
    assert len(ops) >= 24
    for path, method, op in ops:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("description"), where
        if not path.startswith("/health"):
            assert {"401", "403"} <= set(op["responses"]), where
        if "requestBody" in op:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert "examples" in doc["components"]["schemas"][ref] or ref in ("Inventory", "Timetable"), where
        for code, resp in op["responses"].items():
            if code.startswith(("4", "5")) and code != "503":
                assert resp["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem"), where
    schemas: dict[str, Any] = doc["components"]["schemas"]
    public = [n for n in schemas if n.endswith("Public") and not n.startswith("Page")]
    assert len(public) >= 8
    assert all("examples" in schemas[n] for n in public), [n for n in public if "examples" not in schemas[n]]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_influxdb_down_is_a_503_problem_not_a_crash(client: TestClient) -> None:
    r = client.get("/sites")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "5"
    assert r.json()["detail"].startswith("InfluxDB is unavailable")
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["influxdb"]["ok"] is False
    assert ready.json()["checks"]["store"]["ok"] is True
    assert client.get("/alarms").status_code == 200, "the store still answers"
