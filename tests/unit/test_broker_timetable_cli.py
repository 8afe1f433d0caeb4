from __future__ import annotations

import base64
import hashlib
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from examwatch import broker, contract_doc, credentials, sample, timetable
from examwatch.datafile import DataFileError
from examwatch.inventory import Inventory
from examwatch.settings import BrokerSettings
from harness.stack import EXAMWATCH

INV = Inventory.model_validate(sample.district(formal=1, backup=1, rooms=1))
ROOT = Path(__file__).parents[2]


def test_acl_gives_each_device_only_its_own_topics() -> None:
    acl = broker.acl_text(INV)
    assert "user S01-R01-JAM1\ntopic write exam/v1/S01/jammer/S01-R01-JAM1/+\n" in acl
    assert "user gw-S02\ntopic write exam/v1/S02/+/+/+\n" in acl
    assert "user svc-ingest\ntopic read exam/v1/#\n" in acl
    # no pattern rules: a device id never grants another site's or kind's topics
    assert "pattern" not in acl
    assert acl.count("\nuser ") == len(broker.usernames(INV))


def test_password_file_verifies_like_mosquitto(tmp_path: Path) -> None:
    files = broker.write(INV, "0123456789abcdefXYZ", BrokerSettings(data_dir=tmp_path / "data"), tmp_path)
    entries = dict(line.split(":", 1) for line in files.passwd.read_text().splitlines())
    _, seven, iterations, salt, digest = entries["S01-VAULT-PWR1"].split("$")
    plain = credentials.password("0123456789abcdefXYZ", "S01-VAULT-PWR1")
    assert seven == "7"
    assert (
        base64.b64encode(
            hashlib.pbkdf2_hmac("sha512", plain.encode(), base64.b64decode(salt), int(iterations), 64)
        ).decode()
        == digest
    )
    conf = files.conf.read_text()
    assert "allow_anonymous false" in conf
    assert f"acl_file {files.acl}" in conf
    assert oct(files.passwd.stat().st_mode)[-3:] == "600"


def test_passwords_differ_per_identity_and_secret() -> None:
    a = credentials.password("secret-one-0123456", "S01-R01-JAM1")
    assert a != credentials.password("secret-one-0123456", "S01-R02-JAM1")
    assert a != credentials.password("secret-two-0123456", "S01-R01-JAM1")


def test_timetable_jammer_window_and_listening_exception() -> None:
    tt = timetable.load(ROOT / "config" / "timetable.yaml")
    chinese = next(p for p in tt.papers if p.id == "d1-chinese")
    assert not chinese.jammers_required(chinese.start - timedelta(minutes=16))
    assert chinese.jammers_required(chinese.start - timedelta(minutes=15))
    assert chinese.jammers_required(chinese.end - timedelta(seconds=1))
    assert not chinese.jammers_required(chinese.end)
    english = next(p for p in tt.papers if p.id == "d2-english")
    assert not english.jammers_required(english.start + timedelta(minutes=10))  # listening
    assert english.jammers_required(english.start + timedelta(minutes=20))
    assert tt.next("S01", chinese.start - timedelta(hours=1)) == chinese
    assert tt.current("S01", chinese.start + timedelta(minutes=1)) == chinese
    moved = tt.shifted(datetime.now(chinese.start.tzinfo) - chinese.start)
    assert moved.current("S01", datetime.now(chinese.start.tzinfo) + timedelta(seconds=1)) is not None


def test_timetable_refuses_naive_times_and_stray_windows(tmp_path: Path) -> None:
    bad = tmp_path / "tt.yaml"
    bad.write_text(
        "exam: x\npapers:\n  - {id: p1, subject: 语文, start: '2026-06-07T09:00:00', end: '2026-06-07T11:30:00+08:00'}\n"
    )
    with pytest.raises(DataFileError, match=r"tt.yaml:3: papers\[0\].start: Input should have timezone info"):
        timetable.load(bad)


def test_cli_reports_a_broken_file_in_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "inv.yaml"
    broken.write_text((ROOT / "config" / "district.yaml").read_text().replace("kind: power", "kind: powr", 1))
    out = subprocess.run([EXAMWATCH, "inventory", "check", str(broken)], capture_output=True, text=True, check=False)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith(f"examwatch: {broken}:")
    assert ".kind: Input should be" in out.stderr


def test_cli_refuses_production_without_secret(tmp_path: Path) -> None:
    conf = tmp_path / "examwatch.toml"
    conf.write_text("[mqtt]\nport = 1\n")
    env = {"PATH": "/usr/bin:/bin", "EXAMWATCH_CONFIG": str(conf)}
    out = subprocess.run([EXAMWATCH, "ingest"], capture_output=True, text=True, check=False, env=env)
    assert out.returncode == 2
    assert "secret is not set" in out.stderr


@pytest.mark.parametrize("command", [[], ["ingest"], ["simulate"], ["broker-config"], ["inventory", "check"]])
def test_every_command_explains_itself(command: list[str]) -> None:
    out = subprocess.run([EXAMWATCH, *command, "--help"], capture_output=True, text=True, check=True)
    assert "Usage:" in out.stdout


def test_contract_doc_is_current() -> None:
    """docs/contract.md is generated from the models: regenerate it with `examwatch contract`."""
    assert (ROOT / "docs" / "contract.md").read_text() == contract_doc.render()


def test_timetable_shift_moves_the_day_to_now(tmp_path: Path) -> None:
    out = tmp_path / "tt.yaml"
    subprocess.run([EXAMWATCH, "timetable", "shift", str(ROOT / "config" / "timetable.yaml"), "--starting-in", "30",
                    "--out", str(out)], check=True, capture_output=True)
    original, moved = timetable.load(ROOT / "config" / "timetable.yaml"), timetable.load(out)
    first = moved.ordered[0]
    now = datetime.now(first.start.tzinfo)
    assert timedelta(minutes=29) < first.start - now <= timedelta(minutes=30)
    assert [p.end - p.start for p in moved.ordered] == [p.end - p.start for p in original.ordered]
    assert moved.ordered[-1].start - first.start == original.ordered[-1].start - original.ordered[0].start
