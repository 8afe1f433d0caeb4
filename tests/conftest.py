from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.servers import Influx, Kannel
from harness.stack import Stack

pytest_plugins = ["harness.api_stack"]  # the `api` fixture: a running API over its own stack


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx]:
    server = Influx(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.stop()


def _db_name(request: pytest.FixtureRequest) -> str:
    return "t_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path, influx_server: Influx) -> Iterator[Stack]:
    """A broker, a database and a config of this test's own; ingest is started by the test."""
    s = Stack(tmp_path, influx_server, _db_name(request))
    s.mosquitto.start()
    yield s
    s.close()


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack with an InfluxDB of its own, so the test may stop it."""
    server = Influx(tmp_path / "influxd")
    server.start()
    try:
        s = Stack(tmp_path / "stack", server, "faults")
        s.mosquitto.start()
        yield s
        s.close()
    finally:
        server.kill()


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    """Kannel (bearerbox, smsbox) with fakesmsc as its SMSC, shared by a test module."""
    k = Kannel(tmp_path_factory.mktemp("kannel"))
    k.start()
    yield k
    k.stop()
