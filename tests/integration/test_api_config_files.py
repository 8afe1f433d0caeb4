"""Admins change the rules and the duty roster through the API; the running engine and notifier reload.

Real processes: mosquitto, influxd, ingest, the API, `examwatch rules`, `examwatch notify` and
Kannel with fakesmsc. The rules and roster files are the API stack's own copies.
"""

from __future__ import annotations

import copy
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from examwatch.store.access import Role
from harness.api_stack import ApiStack
from harness.notify_kit import PHONES, Processes, ServiceProcess, sms_to
from harness.servers import Kannel, wait_for
from harness.stack import _toml, device_topic, telemetry

NEW_CHIEF = "13911112222"


@pytest.fixture(scope="module")
def services(api: ApiStack, kannel: Kannel) -> Iterator[dict[str, ServiceProcess]]:
    """`examwatch rules` and `examwatch notify` on the API stack's config (its rules dir and roster)."""
    doc = tomllib.loads(api.config.read_text())
    doc["notify"].update(kannel_url=kannel.sendsms_url, kannel_username=kannel.user,
                         kannel_password=kannel.password, retry_min_s=0.5, retry_max_s=2.0, rate_per_phone=1000)
    config = api.root / "services.toml"
    config.write_text(_toml(doc))
    procs = Processes(api)
    try:
        yield {"rules": procs.start(config, "rules"), "notify": procs.start(config, "notify")}
    finally:
        procs.kill_all()


def _admin(api: ApiStack) -> httpx.Client:
    return api.http(Role.ADMIN)


def _power_rules(api: ApiStack) -> dict[str, Any]:
    rules: dict[str, Any] = api.http().get("/rules").json()["files"]["power"]
    return rules


def _power_rules_from_disk(api: ApiStack) -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load((api.rules_dir / "power.yaml").read_text())
    return rules


def _mains(api: ApiStack, volts: float) -> None:
    gw = api.gateway("S01")
    gw.publish(device_topic(api, "S01-VAULT-PWR1"),
               telemetry("S01-VAULT-PWR1", "power", mains_v=volts, on_ups=volts < 187), qos=1).wait_for_publish(5)


def _active(api: ApiStack, rule: str) -> list[dict[str, Any]]:
    items = api.http().get("/alarms", params={"site": "S01", "active": True, "limit": 500}).json()["items"]
    return [a for a in items if a["rule"] == rule]


def test_rules_saved_through_the_api_run_at_once_and_keep_alarm_state(
        api: ApiStack, services: dict[str, ServiceProcess]) -> None:
    _mains(api, 0.0)
    wait_for(lambda: _active(api, "power_mains_lost"), 20, "the mains-lost alarm")
    lost = _active(api, "power_mains_lost")[0]
    body = _power_rules(api)
    assert "power_mains_high" not in [r["name"] for r in body["rules"]]
    body["rules"].append({"name": "power_mains_high", "type": "threshold", "field": "mains_v",
                          "levels": [{"severity": "major", "above": 245}], "clear": {"below": 240}})
    r = _admin(api).put("/rules/power", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["reload"]["state"] == "applied", r.json()
    assert "rules loaded" in r.json()["reload"]["detail"]
    assert "power_mains_high" in (api.rules_dir / "power.yaml").read_text()
    # The running engine judges with the new rule, and the alarm raised before the reload is still the same one.
    _mains(api, 250.0)
    wait_for(lambda: _active(api, "power_mains_high"), 20, "an alarm from the rule added through the API")
    assert _active(api, "power_mains_high")[0]["severity"] == "major"
    kept = api.http().get(f"/alarms/{lost['id']}").json()
    assert kept["state"] in ("firing", "resolved"), kept  # 250 V restores the mains: cleared, not forgotten
    firing = [t for t in kept["transitions"] if t["state"] == "firing"]
    assert len(firing) == 1, kept  # the reload did not fire it again
    entry = _admin(api).get("/audit", params={"limit": 5}).json()["items"]
    assert any(e["path"] == "/rules/power" and e["detail"].get("reload") == "applied" for e in entry), entry


@pytest.mark.parametrize(("change", "field", "says"), [
    (lambda b: b["rules"][1].update(field="volts"), "body.rules[1]", "no field 'volts'"),
    (lambda b: b["rules"][1].update(levels=[]), "body.rules[1].threshold.levels", "at least 1"),
    (lambda b: b["rules"].append({"name": "camera_offline", "type": "absence", "timeout_s": 60}), "body.rules",
     "already used in"),
    (lambda b: b["rules"].append({"name": "cov", "type": "coverage"}), "body.rules[", "site rules files"),
    (lambda b: b.update(extra=1), "body.extra", "Extra inputs"),
], ids=["unknown-field", "no-levels", "name-used-in-another-file", "rule-in-the-wrong-file", "unknown-key"])
def test_a_broken_rules_file_is_refused_naming_the_field_and_nothing_changes(
        api: ApiStack, change: Any, field: str, says: str) -> None:
    before = (api.rules_dir / "power.yaml").read_bytes()
    body = copy.deepcopy(_power_rules(api))
    assert body["rules"][1]["name"] == "power_mains_lost"
    change(body)
    r = _admin(api).put("/rules/power", json=body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    assert says in problem["detail"], problem
    assert (api.rules_dir / "power.yaml").read_bytes() == before


def test_an_unknown_rules_file_is_refused(api: ApiStack) -> None:
    r = _admin(api).put("/rules/printer", json={"rules": []})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "path.file"
    assert not (api.rules_dir / "printer.yaml").exists()


def test_a_file_broken_on_disk_is_refused_by_the_engine_which_keeps_its_rules(
        api: ApiStack, services: dict[str, ServiceProcess]) -> None:
    path = api.rules_dir / "camera.yaml"
    good = path.read_text()
    path.write_text(good + "  - {name: camera_broken, type: threshold, field: nothing, levels: [{above: 1}]}\n")
    try:
        r = _admin(api).post("/rules/reload")
        assert r.status_code == 200, r.text
        outcome = r.json()
        assert outcome["state"] == "refused", outcome
        assert "camera.yaml:" in outcome["detail"]
        assert "the running rules stay" in outcome["detail"]
    finally:
        path.write_text(good)
    assert _admin(api).post("/rules/reload").json()["state"] == "applied"


def test_a_file_broken_on_disk_is_mended_by_a_put_and_blocks_the_others_with_409(api: ApiStack) -> None:
    path = api.rules_dir / "camera.yaml"
    good = api.http().get("/rules").json()["files"]["camera"]
    original = path.read_bytes()
    path.write_text("rules: [{name: camera_broken, type: nothing}]\n")
    try:
        blocked = _admin(api).put("/rules/power", json=_power_rules_from_disk(api))
        assert blocked.status_code == 409, blocked.text
        assert "camera.yaml:1" in blocked.json()["detail"]
        assert "repair that file first" in blocked.json()["detail"]
        mended = _admin(api).put("/rules/camera", json=good)
        assert mended.status_code == 200, mended.text
        assert api.http().get("/rules").status_code == 200
    finally:
        path.write_bytes(original)


def test_a_roster_saved_through_the_api_routes_the_next_sms(
        api: ApiStack, services: dict[str, ServiceProcess], kannel: Kannel) -> None:
    roster = api.http(Role.OPERATOR).get("/roster").json()
    chief = next(p for p in roster["people"] if p["id"] == "chief-S01")
    assert chief["phones"] == [PHONES["chief-S01"]]
    chief["phones"] = [NEW_CHIEF]
    r = _admin(api).put("/roster", json=roster)
    assert r.status_code == 200, r.text
    assert r.json()["reload"]["state"] == "applied", r.json()
    since = len(kannel.smsc.messages())
    _mains(api, 230.0)  # healthy first, so the loss below is a new alarm whatever came before
    wait_for(lambda: not _active(api, "power_mains_lost"), 20, "the mains to be back")
    _mains(api, 0.0)
    wait_for(lambda: any("市电中断" in t for t in sms_to(kannel, NEW_CHIEF, since)), 30,
             "the mains-lost SMS to the chief's new phone")
    assert not any("市电中断" in t for t in sms_to(kannel, PHONES["chief-S01"], since))


def test_a_roster_the_notifier_could_not_use_is_refused(api: ApiStack) -> None:
    before = api.roster_path.read_bytes()
    roster = api.http(Role.OPERATOR).get("/roster").json()
    bad_site = copy.deepcopy(roster)
    bad_site["routes"][0]["sites"] = ["S99"]
    r = _admin(api).put("/roster", json=bad_site)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.routes[0].sites", r.json()
    assert "S99 is not in the inventory" in r.json()["detail"]
    unknown_person = copy.deepcopy(roster)
    unknown_person["routes"][0]["people"] = ["nobody"]
    r = _admin(api).put("/roster", json=unknown_person)
    assert r.status_code == 422, r.text
    assert "nobody" in r.json()["detail"]
    assert api.roster_path.read_bytes() == before


def test_viewers_may_not_read_phone_numbers_and_a_missing_roster_is_404(api: ApiStack) -> None:
    assert api.http(Role.VIEWER).get("/roster").status_code == 403
    kept = api.roster_path.read_bytes()
    api.roster_path.unlink()
    try:
        r = api.http(Role.OPERATOR).get("/roster")
        assert r.status_code == 404, r.text
        assert "PUT one" in r.json()["detail"]
    finally:
        api.roster_path.write_bytes(kept)


def test_a_reload_with_no_service_listening_says_so(api: ApiStack, services: dict[str, ServiceProcess]) -> None:
    log = Path(services["rules"].root) / "rules.out"
    obeyed = log.read_text().count("reload requested by test-admin")
    services["rules"].stop()
    try:
        started = time.monotonic()
        outcome = _admin(api).post("/rules/reload").json()
        assert outcome["state"] == "no_answer", outcome
        assert time.monotonic() - started < 10
    finally:
        services["rules"].start(timeout=30)
    # The request waited in the engine's session and is answered once it is back.
    wait_for(lambda: log.read_text().count("reload requested by test-admin") > obeyed, 20,
             "the engine to obey the request it missed")


def test_an_inventory_dropping_a_site_the_roster_routes_is_refused(api: ApiStack) -> None:
    inventory = api.http().get("/inventory").json()
    inventory["sites"] = [s for s in inventory["sites"] if s["id"] != "S03"]
    r = _admin(api).put("/inventory", json=inventory)
    assert r.status_code == 422, r.text
    assert "S03" in r.json()["detail"]
    assert "change the roster first" in r.json()["detail"]
    assert {s["id"] for s in api.http().get("/inventory").json()["sites"]} >= {"S03"}
