"""Write a timetable as a data file (a drill's shifted day, for the rules engine to read)."""

from __future__ import annotations

from pathlib import Path

import yaml

from examwatch.timetable import Timetable


def dump(timetable: Timetable, path: Path) -> None:
    """Write ``timetable`` as YAML that ``examwatch.timetable.load`` reads back unchanged."""
    data = timetable.model_dump(mode="json", exclude_defaults=True)
    header = "# A drill's timetable: the shipped one shifted so the drill's day is today.\n"
    path.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
