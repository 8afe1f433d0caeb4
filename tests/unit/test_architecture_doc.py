"""docs/architecture.md stays true: it names every package, store table and import contract, and
its example device kind passes the device-kind contract."""

from __future__ import annotations

import configparser
import json
import re
import sys
import types
from pathlib import Path

import pytest
from pydantic import ValidationError

from examwatch.check import MessageCheck
from examwatch.compact import DeviceRef, tags
from examwatch.kinds import KINDS, Channel, DeviceKind
from examwatch.store.models import Base

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
NOW = 1_780_000_000_000


def test_every_package_is_on_the_map() -> None:
    packages = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in ("tests", "bench"))
    assert packages, "no packages found"
    missing = [p for p in packages if f"`{p}/`" not in DOC]
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_every_store_table_is_named() -> None:
    import examwatch.store.access  # noqa: PLC0415 - registers the API's tables on Base
    import examwatch.store.notify_models  # noqa: F401, PLC0415 - registers the notifier's

    missing = [t for t in Base.metadata.tables if f"`{t}`" not in DOC]
    assert not missing, f"docs/architecture.md does not name the tables {missing}"


def test_every_import_contract_is_stated() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / ".importlinter")
    names = [cfg[s]["name"] for s in cfg.sections() if s.startswith("importlinter:contract:")]
    assert names
    missing = [n for n in names if n not in DOC]
    assert not missing, f"docs/architecture.md does not state the contracts {missing}"


@pytest.fixture
def radio(monkeypatch: pytest.MonkeyPatch) -> DeviceKind:
    """The doc's example kind, loaded from the doc's own code and registered for this test."""
    section = DOC.split("## Adding a device kind", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the example kind's code block is missing"
    module = types.ModuleType("examwatch.kinds.radio")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code.group(1), "docs/architecture.md", "exec"), module.__dict__)  # noqa: S102 - our own doc
    kind: DeviceKind = module.KIND
    monkeypatch.setitem(KINDS, kind.name, kind)
    return kind


def test_the_example_kind_passes_the_contract(radio: DeviceKind) -> None:
    ref = DeviceRef("S01-R01-RAD1", radio.name, "S01", "R01", tags("S01", "R01", radio.name, "S01-R01-RAD1"))
    check = MessageCheck({ref.id: ref})
    telemetry = {"ts": NOW, "device": ref.id, "interval_s": 30, "hits": 2, "peak_dbm": -41.5, "peak_mhz": 1860.2}
    event = {"ts": NOW, "device": ref.id, "event": "hit", "mhz": 1860.2, "dbm": -41.5, "voice": True}
    for channel, payload in ((Channel.TELEMETRY, telemetry), (Channel.EVENT, event)):
        accepted = check.check(radio.topic("S01", ref.id, channel), json.dumps(payload).encode(), NOW + 200)
        assert accepted is not None
        assert (accepted.route.measurement, accepted.skew_ms) == (radio.measurement(channel), 200)
    with pytest.raises(ValidationError, match="extra"):
        radio.telemetry_adapter.validate_json(json.dumps({**telemetry, "note": "x"}))
    with pytest.raises(ValidationError):
        radio.telemetry_adapter.validate_json(json.dumps({**telemetry, "peak_dbm": 99.0}))
    for name, info in radio.telemetry.model_fields.items():
        assert info.description or name in ("ts", "device", "drill"), f"radio.{name} says neither unit nor meaning"
    assert radio.zh == "无线电监测"
