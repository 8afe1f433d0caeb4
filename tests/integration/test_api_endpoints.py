"""Every endpoint against real mosquitto, ingest, InfluxDB and the SQLite store, through a real API process."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import yaml

from examwatch.alarm import Severity
from examwatch.store import writing
from examwatch.store.access import Role
from examwatch.store.notify_models import Notification
from harness.api_stack import ApiStack, wait_ok
from harness.stack import device_topic, publish_all, telemetry

GREEN_SITE = "S02"


@pytest.fixture(scope="module")
def seeded(api: ApiStack) -> ApiStack:
    """S02: every device reports three times (green). S03: one jammer reports, then says offline."""
    gw = api.gateway(GREEN_SITE)
    now_ms = time.time_ns() // 1_000_000
    msgs = []
    for d in api.inventory.site(GREEN_SITE).devices:
        msgs.append((device_topic(api, d.id, "status"), b"online"))
        msgs += [(device_topic(api, d.id), telemetry(d.id, d.kind.value, now_ms - 3000 + 1000 * i))
                 for i in range(3)]
    publish_all(gw, msgs)
    gw3 = api.gateway("S03")
    publish_all(gw3, [(device_topic(api, "S03-R01-JAM1"), telemetry("S03-R01-JAM1", "jammer", now_ms - 500))])
    api.wait_count("jammer", 3 * 4 + 1)
    publish_all(gw3, [(device_topic(api, "S03-R01-JAM1", "status"), b"offline")])
    api.wait_count("device_status", len(api.inventory.site(GREEN_SITE).devices) + 1)
    return api


def test_health_is_open_and_ready_checks_each_dependency(api: ApiStack) -> None:
    anon = api.http(None)
    assert anon.get("/health").json() == {"status": "ok", "checks": {}}
    ready = anon.get("/health/ready").json()
    assert ready["status"] == "ok"
    assert set(ready["checks"]) == {"broker", "influxdb", "store"}
    assert all(c["ok"] for c in ready["checks"].values())


def test_everything_else_needs_a_token(api: ApiStack) -> None:
    r = api.http(None).get("/sites")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["status"] == 401
    bad = api.http(None).get("/sites", headers={"Authorization": "Bearer ew_not-a-token"})
    assert bad.status_code == 401


def test_sites_roll_up_devices_alarms_and_readiness(seeded: ApiStack) -> None:
    c = seeded.http()
    sites = wait_ok(c, "/sites", lambda b: b["items"][1]["status"] == "green")["items"]
    green = sites[1]
    assert green["id"] == GREEN_SITE
    assert all(k["offline"] == 0 and k["online"] > 0 for k in green["devices"].values())
    assert green["next_paper"]["id"] == seeded.paper
    assert green["next_paper"]["readiness"]["go"] is None
    assert sites[2]["status"] == "amber"
    assert "devices offline" in sites[2]["reasons"][0]

    at_ns = 1_900_000_000_123_000_000  # a time of our own: the answer must carry it, not any time
    seeded.set_readiness(GREEN_SITE, "_site", go=False, detail="R01 jammer missing", at_ns=at_ns)
    site = c.get(f"/sites/{GREEN_SITE}").json()
    assert site["status"] == "red"
    readiness = site["next_paper"]["readiness"]
    assert {k: readiness[k] for k in ("go", "detail")} == {"go": False, "detail": "R01 jammer missing"}
    assert datetime.fromisoformat(readiness["at"]) == datetime.fromtimestamp(at_ns / 1e9, UTC)
    assert {r["id"] for r in site["rooms"]} == {r.id for r in seeded.inventory.site(GREEN_SITE).rooms}
    seeded.set_readiness(GREEN_SITE, "_site", go=True)
    assert c.get(f"/sites/{GREEN_SITE}").json()["status"] == "green"

    alarm = seeded.open_alarm(f"{GREEN_SITE}-R02-JAM1", "jammer_shielding", severity=Severity.CRITICAL)
    site = c.get(f"/sites/{GREEN_SITE}").json()
    assert site["status"] == "red"
    assert site["alarms"]["critical"] == 1
    c_op = seeded.http(Role.OPERATOR)
    assert c_op.post(f"/alarms/{alarm}/resolve", json={"comment": "fixed"}).status_code == 200
    assert c.get(f"/sites/{GREEN_SITE}").json()["status"] == "green"


def test_rooms_and_devices_show_online_last_seen_and_skew(seeded: ApiStack) -> None:
    c = seeded.http()
    rooms = c.get(f"/sites/{GREEN_SITE}/rooms", params={"limit": 2}).json()
    assert rooms["total"] == len(seeded.inventory.site(GREEN_SITE).rooms)
    assert len(rooms["items"]) == 2
    room = c.get(f"/sites/{GREEN_SITE}/rooms/R01").json()
    assert room["devices_offline"] == 0
    jam = next(d for d in room["devices"] if d["kind"] == "jammer")
    assert jam["online"] is True
    assert jam["status_message"] == "online"
    assert abs(jam["clock_skew_ms"]) < 60_000
    last_seen = datetime.fromisoformat(jam["last_seen"])
    assert datetime.now(UTC) - last_seen < timedelta(minutes=2)

    detail = c.get(f"/devices/{jam['id']}").json()
    assert detail["latest"]["on"] in (True, False)
    assert "skew_ms" in detail["latest"]
    assert "device" not in detail["latest"]

    off = c.get("/devices/S03-R01-JAM1").json()
    assert off["online"] is False
    assert off["status_message"] == "offline"
    assert off["last_seen"] is not None
    listed = c.get("/devices", params={"site": "S03", "online": "false", "kind": "jammer"}).json()
    assert "S03-R01-JAM1" in {d["id"] for d in listed["items"]}
    assert all(d["kind"] == "jammer" and d["site"] == "S03" for d in listed["items"])
    assert c.get("/devices/NOPE").status_code == 404
    assert c.get(f"/sites/{GREEN_SITE}/rooms/NOPE").status_code == 404


def test_telemetry_history_downsamples_and_validates_fields(seeded: ApiStack) -> None:
    c = seeded.http()
    device = f"{GREEN_SITE}-R01-JAM1"
    end = datetime.now(UTC) + timedelta(seconds=5)
    start = end - timedelta(minutes=5)
    params = {"start": start.isoformat(), "end": end.isoformat()}
    series = c.get(f"/devices/{device}/telemetry", params={**params, "field": "rf_dbm_n78", "every_s": 1}).json()
    assert series["aggregate"] == "mean"
    assert len(series["points"]) == 3
    coarse = c.get(f"/devices/{device}/telemetry", params={**params, "field": "rf_dbm_n78", "every_s": 300}).json()
    assert 1 <= len(coarse["points"]) <= 2
    flags = c.get(f"/devices/{device}/telemetry", params={**params, "field": "on"}).json()
    assert flags["aggregate"] == "last"
    assert all(isinstance(p["value"], bool) for p in flags["points"])

    bad = c.get(f"/devices/{device}/telemetry", params={"field": 'on") FROM x; DROP DATABASE y --'})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.field"
    not_number = c.get(f"/devices/{device}/telemetry", params={"field": "mode", "agg": "mean"})
    assert not_number.json()["errors"][0]["field"] == "query.agg"
    too_many = c.get(f"/devices/{device}/telemetry", params={**params, "every_s": 1,
                                                              "start": (end - timedelta(days=1)).isoformat()})
    assert too_many.json()["errors"][0]["field"] == "query.every_s"


def test_alarms_filter_act_and_keep_history(seeded: ApiStack) -> None:
    c, op = seeded.http(), seeded.http(Role.OPERATOR)
    cam = seeded.open_alarm("S03-R02-CAM1", "camera_offline")
    drill = seeded.open_alarm("S03-R03-JAM1", "jammer_offline", drill=True)
    site = seeded.open_site_alarm("S03")

    def ids(**params: object) -> set[int]:
        return {a["id"] for a in c.get("/alarms", params=params).json()["items"]}

    assert {cam, drill, site} <= ids(site="S03")
    assert ids(site="S03", kind="camera") == {cam}
    assert ids(site="S03", drill="true") == {drill}
    assert ids(site="S03", severity="critical") == {site}
    assert ids(site="S03", severity=["critical", "major"]) == {cam, drill, site}

    r = op.post(f"/alarms/{cam}/acknowledge", json={"comment": "on my way"})
    assert r.status_code == 200
    assert r.json()["state"] == "acknowledged"
    assert op.post(f"/alarms/{cam}/acknowledge", json={}).status_code == 409
    assert op.post(f"/alarms/{cam}/comments", json={"comment": "cable replaced"}).status_code == 200
    assert ids(site="S03", state="acknowledged") == {cam}
    assert op.post(f"/alarms/{cam}/resolve", json={"comment": "recording again"}).status_code == 200
    assert op.post(f"/alarms/{cam}/comments", json={"comment": "late"}).status_code == 409
    history = c.get(f"/alarms/{cam}").json()["transitions"]
    assert [(t["state"], t["by"], t["comment"]) for t in history] == [
        ("firing", "rules", ""), ("acknowledged", "test-operator", "on my way"),
        ("acknowledged", "test-operator", "cable replaced"), ("resolved", "test-operator", "recording again")]
    assert c.get(f"/alarms/{cam}/transitions").json() == history
    assert cam not in ids(active="true")
    assert op.post("/alarms/999999/acknowledge", json={}).status_code == 404


def test_readiness_timetable_and_inventory(seeded: ApiStack) -> None:
    c, admin = seeded.http(), seeded.http(Role.ADMIN)
    seeded.set_readiness("S01", "R01", go=False, detail="camera offline")
    rows = c.get("/readiness", params={"site": "S01", "go": "false"}).json()["items"]
    assert [(r["room"], r["detail"]) for r in rows] == [("R01", "camera offline")]

    tt = c.get("/timetable").json()
    assert [p["id"] for p in tt["papers"]] == [seeded.paper]
    tt["papers"].append({**tt["papers"][0], "id": "t-math", "subject": "数学", "sites": ["S01"]})
    put = admin.put("/timetable", json=tt)
    assert put.status_code == 200
    assert [p["id"] for p in c.get("/timetable", params={"site": "S02"}).json()["papers"]] == [seeded.paper]
    on_disk = yaml.safe_load(seeded.timetable_path.read_text())
    assert [p["id"] for p in on_disk["papers"]] == [seeded.paper, "t-math"]
    bad = admin.put("/timetable", json={"exam": "x", "papers": [{**tt["papers"][0], "end": tt["papers"][0]["start"]}]})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"].startswith("body.papers[0]")

    inv = c.get("/inventory").json()
    site = inv["sites"][2]
    site["devices"].append({"id": "S03-R01-CAM9", "kind": "camera", "room": "R01"})
    assert admin.put("/inventory", json=inv).status_code == 200
    assert c.get("/devices/S03-R01-CAM9").status_code == 200
    assert "S03-R01-CAM9" in seeded.inventory_path.read_text()
    site["devices"].append({"id": "S03-R01-CAM8", "kind": "camera", "room": "NOPE"})
    refused = admin.put("/inventory", json=inv)
    assert refused.status_code == 422
    assert "room NOPE" in refused.json()["detail"]


def test_drills_start_list_and_report(seeded: ApiStack) -> None:
    c, admin = seeded.http(), seeded.http(Role.ADMIN)
    assert c.get("/scenarios").json() == ["power-cut"]
    started = admin.post("/drills", json={"scenario": "power-cut", "speed": 10})
    assert started.status_code == 202
    drill_id = started.json()["id"]
    done = wait_ok(c, f"/drills/{drill_id}", lambda b: b["state"] != "running")
    assert done["state"] == "passed"
    assert done["has_report"] is True
    assert done["started_by"] == "test-admin"
    report = c.get(f"/drills/{drill_id}/report").json()  # the real `examwatch drill run`'s scored report
    assert report["unseen"] == 0, report
    assert report["faults"][0]["subject"] == "S01-VAULT-PWR1"
    assert report["faults"][0]["detected"] is True
    assert drill_id in {d["id"] for d in c.get("/drills").json()["items"]}
    missing = admin.post("/drills", json={"scenario": "nope"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "body.scenario"
    assert c.get("/drills/nope/report").status_code == 404


def test_tokens_and_audit_log_record_every_write(seeded: ApiStack) -> None:
    admin = seeded.http(Role.ADMIN)
    before = admin.get("/audit").json()["total"]
    issued = admin.post("/tokens", json={"name": "wall-7", "role": "viewer"})
    assert issued.status_code == 201
    token = issued.json()["token"]
    wall = seeded.http(None)
    wall.headers["Authorization"] = f"Bearer {token}"
    assert wall.get("/sites").status_code == 200
    assert wall.post("/alarms/1/acknowledge", json={}).status_code == 403
    assert admin.delete(f"/tokens/{issued.json()['id']}").status_code == 204
    assert wall.get("/sites").status_code == 401
    listed = admin.get("/tokens").json()["items"]
    assert token not in str(listed)
    assert next(t for t in listed if t["name"] == "wall-7")["revoked"] is not None

    entries = admin.get("/audit", params={"limit": 3}).json()
    assert entries["total"] == before + 3
    (revoke, refused, create) = entries["items"]
    assert (create["action"], create["actor"], create["status"], create["detail"]["name"]) == (
        "post_token", "test-admin", 201, "wall-7")
    assert (refused["actor"], refused["status"], refused["path"]) == ("wall-7", 403, "/alarms/1/acknowledge")
    assert (revoke["action"], revoke["method"], revoke["remote"]) == ("delete_token", "DELETE", "127.0.0.1")
    assert seeded.http(Role.OPERATOR).get("/audit").status_code == 403
    assert admin.get("/audit", params={"actor": "wall-7"}).json()["items"] == [refused]


def test_problem_details_name_the_field(api: ApiStack) -> None:
    r = api.http().get("/alarms", params={"limit": 9999, "severity": "loud"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"query.limit", "query.severity[0]"}
    assert api.http().get("/sites/NOPE").json() == {
        "type": "about:blank", "title": "Not Found", "status": 404, "detail": "no site 'NOPE' in the inventory",
        "instance": "/sites/NOPE"}


def test_metrics_count_requests_by_route(api: ApiStack) -> None:
    c = api.http()
    c.get("/sites/S01")
    text = c.get("/metrics").text
    assert 'examwatch_api_requests_total{method="GET",route="/sites/{site_id}",status="200"}' in text


def test_silences_and_the_notification_outbox(api: ApiStack) -> None:
    c, op = api.http(), api.http(Role.OPERATOR)
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    made = op.post("/silences", json={"kind": "maintenance", "site": "S02", "room": "VAULT", "ends": ends,
                                      "comment": "UPS swap"})
    assert made.status_code == 201
    silence = made.json()
    assert (silence["by"], silence["site"], silence["room"], silence["expired_by"]) == (
        "test-operator", "S02", "VAULT", None)
    assert silence["id"] in {s["id"] for s in c.get("/silences").json()["items"]}
    no_site = op.post("/silences", json={"room": "VAULT", "ends": ends})
    assert no_site.status_code == 422
    assert "needs its site" in no_site.json()["detail"]
    past = op.post("/silences", json={"site": "S02", "ends": "2020-01-01T00:00:00Z"})
    assert past.status_code == 422
    expired = op.post(f"/silences/{silence['id']}/expire")
    assert expired.json()["expired_by"] == "test-operator"
    assert op.post(f"/silences/{silence['id']}/expire").status_code == 409
    assert op.post("/silences/999999/expire").status_code == 404
    assert silence["id"] not in {s["id"] for s in c.get("/silences").json()["items"]}
    assert silence["id"] in {s["id"] for s in c.get("/silences", params={"active": "false"}).json()["items"]}

    alarm = api.open_alarm("S02-VAULT-PWR1", "power_mains_lost", severity=Severity.CRITICAL)
    table = Notification.__table__
    now = time.time_ns()
    with writing(api.notes) as conn:  # as the notifier writes its outbox (its own store)
        for i, status in enumerate(("sent", "failed")):
            conn.execute(sa.insert(table).values(
                alarm_id=alarm, cause=f"{alarm}.1", kind="alert", level=1, person=f"p{i}", address=f"1380000000{i}",
                text="保密室停电", drill=False, status=status, silence_id=None, attempts=1 + i, created_ns=now,
                next_try_ns=now, sent_ns=now if status == "sent" else None, result="0: Accepted for delivery"))
    listed = c.get("/notifications", params={"alarm_id": alarm}).json()
    assert listed["total"] == 2
    assert {(n["person"], n["status"], n["attempts"]) for n in listed["items"]} == {("p0", "sent", 1),
                                                                                  ("p1", "failed", 2)}
    failed = c.get("/notifications", params={"alarm_id": alarm, "status": "failed"}).json()["items"]
    assert [n["sent"] for n in failed] == [None]
