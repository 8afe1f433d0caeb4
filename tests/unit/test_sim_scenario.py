"""Drill scenario files: the shipped ones are valid, and a bad one is refused with its line and field."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from drills import scenario as sc
from examwatch import inventory, timetable
from examwatch.datafile import DataFileError
from harness.stack import EXAMWATCH

INVENTORY = inventory.load(Path("config/district.yaml"))
TIMETABLE = timetable.load(Path("config/timetable.yaml"))
SHIPPED = sorted(Path("config/scenarios").glob("*.yaml"))
HEAD = "name: t\ntitle: test\nfaults:\n"


def load(tmp_path: Path, faults: str, head: str = HEAD) -> sc.Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(head + faults)
    return sc.load(path, INVENTORY, TIMETABLE)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenarios_are_valid(path: Path) -> None:
    s = sc.load(path, INVENTORY, TIMETABLE)
    assert s.faults


def test_shipped_scenarios_cover_every_fault_type_and_kind() -> None:
    morning = sc.load(Path("config/scenarios/exam-morning.yaml"), INVENTORY, TIMETABLE)
    assert {f.type for f in morning.faults} == {t.model_fields["type"].default for t in sc.FAULT_TYPES}
    assert {p.stem for p in SHIPPED} >= {"gate", "jammer", "detector", "camera", "power", "exam-morning"}


def test_durations_parse() -> None:
    assert sc.parse_offset("-1h30m") == -timedelta(minutes=90)
    assert sc.parse_offset("+90s") == timedelta(seconds=90)
    assert sc.parse_offset("5m") == timedelta(minutes=5)
    with pytest.raises(ValueError, match="not a duration"):
        sc.parse_offset("5 minutes")


@pytest.mark.parametrize(
    ("faults", "where"),
    [
        ("  - {type: mains_lost, device: S01-R01-CAM1, at: 1m, for: 5m}\n",
         r"s.yaml:4: faults\[0\].mains_lost.device: .*S01-R01-CAM1 is a camera; this fault needs a power"),
        ("  - type: tamper\n    device: S01-R01-CAM1\n    at: soon\n    for: 5m\n",
         r"s.yaml:6: faults\[0\].tamper.at: .*'soon' is not a duration"),
        ("  - {type: band_down, device: S01-R01-JAM1, band: gnss, at: 1m, for: 5m}\n",
         r"s.yaml:4: faults\[0\].band_down.band: .*does not cover band gnss"),
        ("  - {type: band_down, device: S01-R01-JAM1, at: -30m, for: 5m}\n",
         r"s.yaml:4: faults\[0\].band_down: .*while jammers are required"),
        ("  - {type: offline, device: S01-R01-CAM1, at: 1m, for: 0s}\n",
         r"s.yaml:4: faults\[0\].offline.for: "),
        ("  - {type: offline, device: NOPE-1, at: 1m, for: 5m}\n",
         r"s.yaml:4: faults\[0\].offline.device: .*NOPE-1 is not in the inventory"),
        ("  - {type: battery_flat, device: S01-ENT-WTD1, at: 1m, for: 5m}\n",
         r"s.yaml:4: faults\[0\].battery_flat.device: .*needs a handheld"),
        ("  - {type: network_cut, site: S99, at: 1m, for: 5m}\n",
         r"s.yaml:4: faults\[0\].network_cut.site: .*site S99 is not in the inventory"),
        ("  - {type: rogue_device, site: S01, device: S01-R01-CAM1, at: 1m, for: 5m}\n",
         r"s.yaml:4: faults\[0\].rogue_device.device: .*must not be"),
        ("  - {type: clock_drift, device: S01-R01-CAM1, offset: 5s, at: 1m, for: 5m}\n",
         r"s.yaml:4: faults\[0\].clock_drift.offset: .*use minutes"),
        ("  - {type: smoke, device: S01-R01-CAM1, at: 1m, for: 5m}\n",
         r"s.yaml:4: faults\[0\]: .*does not match any of the expected tags"),
        ("  - {type: offline, device: S01-R01-CAM1, at: 1m, for: 5m, colour: red}\n",
         r"s.yaml:4: faults\[0\].offline.colour: Extra inputs are not permitted"),
    ],
    ids=["kind", "offset", "band", "band-window", "length", "unknown-device", "walkthrough", "site", "rogue",
         "drift", "type", "extra"],
)
def test_bad_scenarios_are_refused_with_line_and_field(tmp_path: Path, faults: str, where: str) -> None:
    with pytest.raises(DataFileError, match=where):
        load(tmp_path, faults)


def test_unknown_paper_is_refused(tmp_path: Path) -> None:
    head = "name: t\ntitle: test\npaper: d9-latin\nfaults:\n"
    with pytest.raises(DataFileError, match=r"s.yaml:3: paper: .*no paper d9-latin"):
        load(tmp_path, "  - {type: offline, device: S01-R01-CAM1, at: 1m, for: 5m}\n", head)


def test_drill_check_cli_names_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + "  - type: offline\n    device: S01-R01-CAM1\n    at: 1m\n    for: forever\n")
    out = subprocess.run([EXAMWATCH, "drill", "check", str(bad)], capture_output=True, text=True,
                         env={"EXAMWATCH_MODE": "demo", "PATH": "/usr/bin:/bin"}, check=False)
    assert out.returncode == 2
    assert f"{bad}:7: faults[0].offline.for:" in out.stderr
    assert "Traceback" not in out.stderr


def test_compressed_simulation_without_an_end_is_refused() -> None:
    out = subprocess.run([EXAMWATCH, "simulate", "--speed", "60"], capture_output=True, text=True,
                         env={"EXAMWATCH_MODE": "demo", "PATH": "/usr/bin:/bin"}, check=False)
    assert out.returncode == 2
    assert "--speed above 1 needs --duration" in out.stderr
