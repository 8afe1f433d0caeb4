"""The committed dashboards: current with the code, well-formed, on the provisioned datasource."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import build
from dashboards.macros import Context, UnresolvedVariableError

PROVISIONING = Path(build.__file__).parent / "provisioning"
DOCS = build.load()


def test_committed_json_is_what_the_code_generates() -> None:
    assert build.stale() == [], "run `examwatch dashboards build` and commit dashboards/json/"


def test_stale_reports_an_edited_file(tmp_path: Path) -> None:
    build.write(tmp_path)
    assert build.stale(tmp_path) == []
    (tmp_path / "wall.json").write_text("{}\n")
    (tmp_path / "old.json").write_text("{}\n")
    assert build.stale(tmp_path) == ["old.json", "wall.json"]


def test_every_dashboard_is_committed() -> None:
    assert set(DOCS) == {f"{n}.json" for n in build.DASHBOARDS}


@pytest.mark.parametrize("name", sorted(DOCS))
def test_panel_ids_are_unique_and_grid_fits(name: str) -> None:
    panels = DOCS[name]["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0
        assert g["w"] > 0
        assert g["h"] > 0
        assert g["x"] + g["w"] <= 24, f"{p['title']} overflows the 24 columns: {g}"
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine


def test_wall_fits_one_1080p_screen() -> None:
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in DOCS["wall.json"]["panels"])
    assert bottom <= 28, "a 1080-pixel kiosk screen shows about 28 grid rows"


def _datasource_uids(doc: dict[str, Any]) -> set[str]:
    uids = {p["datasource"]["uid"] for p in doc["panels"] if "datasource" in p}
    uids |= {t["datasource"]["uid"] for p in doc["panels"] for t in p.get("targets", [])}
    uids |= {v["datasource"]["uid"] for v in doc.get("templating", {}).get("list", [])}
    return uids - {"__expr__"}


def test_datasource_uids_match_provisioning() -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "examwatch.yaml").read_text())
    uids = {d["uid"] for d in provisioned["datasources"]}
    assert {d["type"] for d in provisioned["datasources"]} == {"influxdb"}
    assert provisioned["datasources"][0]["jsonData"]["version"] == "InfluxQL"
    for name, doc in DOCS.items():
        assert _datasource_uids(doc) <= uids, name
        assert _datasource_uids(doc), name


def test_dashboard_provider_points_at_the_json() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "examwatch.yaml").read_text())["providers"][0]
    assert provider["type"] == "file"
    compose = (Path(build.__file__).parents[1] / "docker-compose.yml").read_text()
    assert f"./dashboards/json:{provider['options']['path']}" in compose


@pytest.mark.parametrize("name", sorted(DOCS))
def test_variables_resolve(name: str) -> None:
    """Every $name in a query is a Grafana macro or a variable defined earlier on the dashboard."""
    doc = DOCS[name]
    defined: dict[str, list[str]] = {}
    for var in doc.get("templating", {}).get("list", []):
        Context(variables=defined).expand(var["query"])  # may use only the variables before it
        defined[var["name"]] = ["X"]
    ctx = Context(variables=defined)
    for p in doc["panels"]:
        for t in p.get("targets", []):
            if "query" in t:
                expanded = ctx.expand(t["query"], p.get("timeFrom"))
                assert not re.search(r"\$\{?\w|\[\[", expanded), expanded
        for link in p.get("fieldConfig", {}).get("defaults", {}).get("links", []):
            assert re.search(r"/d/examwatch-[a-z]+\?", link["url"]), link


def test_unknown_variable_is_reported() -> None:
    with pytest.raises(UnresolvedVariableError, match=r"\$nosuch"):
        Context().expand('SELECT 1 FROM "m" WHERE "site" =~ /^$nosuch$/')


def test_queries_are_influxql_only() -> None:
    for doc in DOCS.values():
        for p in doc["panels"]:
            for t in p.get("targets", []):
                if t["datasource"]["type"] == "influxdb":
                    assert t["rawQuery"] is True, t
                    assert t["query"].startswith("SELECT "), t
