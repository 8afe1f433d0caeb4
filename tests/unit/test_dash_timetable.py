"""The timetable feed behind the wall's countdown, and the build command's staleness check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from dashboards import build, timetable_feed
from dashboards.cli import app
from examwatch import timetable

REPO = Path(__file__).resolve().parents[2]


def _timetable() -> timetable.Timetable:
    return timetable.load(REPO / "config" / "timetable.yaml")


def test_one_point_per_paper_at_its_start() -> None:
    tt = _timetable()
    lines = timetable_feed.lines(tt).decode().splitlines()
    assert len(lines) == len(tt.papers)
    first = next(line for line in lines if "paper=d1-chinese" in line)
    start_ms = int(datetime(2026, 6, 7, 1, 0, tzinfo=UTC).timestamp() * 1000)
    assert first == (
        f'timetable,paper=d1-chinese subject="语文",start_ms={start_ms}i,end_ms={start_ms + 150 * 60_000}i '
        f"{start_ms * 1_000_000}"
    )


def test_starting_in_moves_every_paper_even_after_ordered_was_read() -> None:
    tt = _timetable()
    assert tt.ordered  # fills Timetable.ordered's cache, which a shifted copy would inherit
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    shifted = timetable_feed.starting_in(tt, 30, now=now)
    starts = sorted(p.start for p in shifted.papers)
    assert starts[0] == now + timedelta(minutes=30)
    assert starts[-1] - starts[0] == max(p.start for p in tt.papers) - min(p.start for p in tt.papers)
    line = timetable_feed.lines(shifted).decode().splitlines()
    assert min(int(x.rsplit(" ", 1)[1]) for x in line) == int((now + timedelta(minutes=30)).timestamp() * 1e9)


def test_build_check_fails_on_stale_json_and_build_fixes_it(tmp_path: Path) -> None:
    runner = CliRunner()
    stale = runner.invoke(app, ["build", "--check", "--out", str(tmp_path)])
    assert stale.exit_code == 1
    assert "wall.json" in stale.output
    assert runner.invoke(app, ["build", "--out", str(tmp_path)]).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.json" for n in build.DASHBOARDS)
    ok = runner.invoke(app, ["build", "--check", "--out", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
