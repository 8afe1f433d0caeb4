"""``examwatch notify`` subcommands: roster check, silences and status on a store, errors as one line."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from notify.cli import app

ROOT = Path(__file__).parents[2]
runner = CliRunner()


def test_check_accepts_the_shipped_roster_and_names_the_line_of_a_bad_one(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["check", str(ROOT / "config" / "roster.yaml"), "--inventory",
                             str(ROOT / "config" / "district.yaml")])
    assert ok.exit_code == 0, ok.output
    doc = yaml.safe_load((ROOT / "config" / "roster.yaml").read_text(encoding="utf-8"))
    counts = f"{len(doc['people'])} people, {len(doc['routes'])} routes, {len(doc['labels'])} labels: OK"
    assert counts in ok.output
    bad = tmp_path / "roster.yaml"
    bad.write_text("people:\n  - {id: a, name: A, phones: ['123456']}\nroutes:\n  - {name: r, level: 0, people: [a]}\n")
    out = runner.invoke(app, ["check", str(bad)])
    assert out.exit_code == 2
    assert f"{bad}:4: routes[0].level: Input should be greater than or equal to 1" in out.output
    assert "Traceback" not in out.output


def test_silence_add_list_expire_and_status(tmp_path: Path) -> None:
    config = tmp_path / "examwatch.toml"
    config.write_text(f'mode = "demo"\n[store]\nurl = "sqlite:///{tmp_path}/state.db"\n'
                      f'[notify]\nstore_url = "sqlite:///{tmp_path}/notify.db"\n')
    add = runner.invoke(app, ["--config", str(config), "silence", "add", "--site", "S03", "--room", "VAULT",
                              "--minutes", "90", "--maintenance", "--by", "王老师", "--comment", "电路检修"])
    assert add.exit_code == 0, add.output
    assert "maintenance site=S03 room=VAULT" in add.output
    refused = runner.invoke(app, ["--config", str(config), "silence", "add", "--room", "VAULT", "--minutes", "5",
                                  "--by", "x"])
    assert refused.exit_code == 2
    assert "a room silence needs its site" in refused.output
    status = runner.invoke(app, ["--config", str(config), "status"])
    assert "outbox: empty" in status.output
    assert "电路检修" in status.output
    expired = runner.invoke(app, ["--config", str(config), "silence", "expire", "1", "--by", "李"])
    assert "ended early by 李" in expired.output
    assert runner.invoke(app, ["--config", str(config), "silence", "list"]).output == ""
    # Silences live in the notifier's own store, where it reads them; the shared store has none.
    assert not (tmp_path / "state.db").exists()
    assert (tmp_path / "notify.db").exists()
