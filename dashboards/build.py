"""Render every dashboard to JSON: the committed files under ``dashboards/json/``.

Each panel gets an id in order of appearance, so ids are stable and unique; the JSON is
written with sorted keys and a trailing newline, so regenerating unchanged code changes no
byte and a review diff shows only what moved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import drill, ingest_health, site, wall

#: Where the committed JSON lives; Grafana's dashboard provider reads this directory.
JSON_DIR = Path(__file__).parent / "json"

#: file name (without .json) → dashboard factory
DASHBOARDS: dict[str, Callable[[], dash_b.Dashboard]] = {
    "wall": wall.build,
    "site": site.build,
    "drill": drill.build,
    "ingest-health": ingest_health.build,
}


def render(factory: Callable[[], dash_b.Dashboard]) -> dict[str, Any]:
    """One dashboard as Grafana JSON (a plain dict), panel ids numbered from 1."""
    model = factory().build()
    for n, panel in enumerate(model.panels or [], start=1):
        panel.id_val = n
    doc: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return doc


def text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name → JSON text, for every dashboard."""
    return {f"{name}.json": text(render(factory)) for name, factory in DASHBOARDS.items()}


def stale(out: Path = JSON_DIR) -> list[str]:
    """Files under ``out`` that differ from what the code generates (or are missing or extra)."""
    wanted = generate()
    present = {p.name for p in out.glob("*.json")} if out.is_dir() else set()
    changed = [n for n, t in wanted.items() if not (out / n).is_file() or (out / n).read_text(encoding="utf-8") != t]
    return sorted(changed + sorted(present - set(wanted)))


def write(out: Path = JSON_DIR) -> list[Path]:
    """Write every dashboard's JSON into ``out`` and remove JSON files no dashboard makes."""
    out.mkdir(parents=True, exist_ok=True)
    wanted = generate()
    for extra in {p.name for p in out.glob("*.json")} - set(wanted):
        (out / extra).unlink()
    paths = []
    for name, body in wanted.items():
        path = out / name
        path.write_text(body, encoding="utf-8")
        paths.append(path)
    return paths


def load(out: Path = JSON_DIR) -> dict[str, dict[str, Any]]:
    """The committed dashboards, by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.json"))}
