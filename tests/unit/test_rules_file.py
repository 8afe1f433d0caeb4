"""Rules files: the shipped ones load; a broken one is refused naming file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from examwatch.datafile import DataFileError
from examwatch.rulebook.files import load_dir
from rules.types import RULE_TYPES

EXAMWATCH = str(Path(sys.executable).parent / "examwatch")
SHIPPED = Path(__file__).resolve().parents[2] / "config" / "rules"


def test_shipped_rules_load_and_use_every_rule_type() -> None:
    ruleset = load_dir(SHIPPED)
    assert {cfg.type for _, cfg in ruleset.rules} == set(RULE_TYPES)
    assert len(set(ruleset.names())) == len(ruleset.rules)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return d


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - {name: a, type: absence, timeout_s: 5}\n  - name: b\n    type: threshold\n"
            "    field: nosuch\n    levels: [{severity: major, above: 1}]\n",
            "jammer.yaml:3: rules[1].threshold: Value error, a jammer telemetry message has no field "
            "'nosuch'",
        ),
        (
            "rules:\n  - {name: a, type: absence, timeout_s: -5}\n",
            "jammer.yaml:2: rules[0].absence.timeout_s: ",
        ),
        ("rules:\n  - {name: a, type: bogus}\n", "jammer.yaml:2: rules[0]: Input tag 'bogus' found"),
        ("rules:\n  - {name: a, type: coverage}\n", "belongs in site rules files, not jammer"),
        ("rules:\n  - {name: a, type: skew}\n  - {name: a, type: skew}\n", "rule names repeated: a"),
        ("rules:\n  - {name: a, type: skew\n", "jammer.yaml:3: not valid YAML"),
    ],
)
def test_broken_file_names_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(DataFileError) as err:
        load_dir(_write(tmp_path, "jammer.yaml", text))
    assert expected in str(err.value)


def test_file_named_after_no_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="named after a device kind"):
        load_dir(_write(tmp_path, "toaster.yaml", "rules: []\n"))


def test_site_timeout_must_be_shorter_than_device_timeouts(tmp_path: Path) -> None:
    _write(tmp_path, "jammer.yaml", "rules:\n  - {name: a, type: absence, timeout_s: 5}\n")
    with pytest.raises(DataFileError, match=r"site.yaml: rules: s.timeout_s \(10 s\) must be shorter"):
        load_dir(_write(tmp_path, "site.yaml", "rules:\n  - {name: s, type: absence, timeout_s: 10}\n"))


def test_engine_does_not_start_on_a_broken_file(tmp_path: Path) -> None:
    rules = _write(
        tmp_path,
        "power.yaml",
        "rules:\n  - name: p\n    type: threshold\n    field: mains_v\n"
        "    levels: [{severity: fatal, below: 187}]\n",
    )
    cfg = tmp_path / "examwatch.toml"
    cfg.write_text(
        f'mode = "demo"\ninventory = "{SHIPPED.parent / "district.yaml"}"\n'
        f'timetable = "{SHIPPED.parent / "timetable.yaml"}"\n[mqtt]\nport = 1\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[rules]\nrules_dir = "{rules}"\n'
    )
    proc = subprocess.run([EXAMWATCH, "rules", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "power.yaml:5: rules[0].threshold.levels[0].severity: Input should be" in proc.stderr
    assert "Traceback" not in proc.stderr
    check = subprocess.run([EXAMWATCH, "rules", "check", str(rules)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 2
    assert "power.yaml:5:" in check.stderr
