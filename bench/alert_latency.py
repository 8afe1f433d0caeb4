"""Alarm latency: storage-room power loss published by a site gateway → SMS accepted by Kannel.

Starts, on free loopback ports under a temporary directory: influxd, mosquitto (generated config
and ACL), Kannel (bearerbox, smsbox, fakesmsc), and the real services as processes:
``examwatch ingest``, ``examwatch rules`` (the shipped rules in config/rules), ``examwatch notify``
(the shipped roster config/roster.yaml) and ``examwatch simulate`` (the 21-site sample district,
every device every 5 s: the background load). After a warm-up it injects storage-room power
losses across the sites, one at a time in round robin: gateway gw-Sxx publishes a telemetry
report of Sxx-VAULT-PWR1 with ``mains_v`` 0 (QoS 1), and the clock starts just before the
publish. It stops when the notifier has the SMS to that site's chief examiner accepted by
Kannel (``0: Accepted for delivery``; the row's ``sent_ns`` is taken right after that answer,
on the same clock). Then mains come back (``mains_v`` 221) and the all-clear follows.

Legs: publish → the rules engine received it (the transition's ``at_ns`` in the shared store),
→ the alarm transition reached an observer subscribed to ``exam/v1/_alarm/+/power_mains_lost/+``
(as svc-notifier, beside the notifier's own shared subscription), → the notifier stored the
notification (``created_ns``), → Kannel accepted it (``sent_ns``).

The floor, measured in the same run under the same load, one probe after each injection: the
minimal chain of ``../shared/SERVERS.md`` (a paho subscriber; an SQLite alarm row and outbox row
committed in WAL mode; Kannel's sendsms over a kept-alive connection; fakesmsc), from the probe's
publish to Kannel's ``0: Accepted``. What the real path takes beyond it is design.

    .venv/bin/python bench/alert_latency.py --injections 210
"""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examwatch import broker, credentials, mqtt, sample, topics  # noqa: E402
from examwatch.inventory import Inventory  # noqa: E402
from examwatch.settings import load_settings  # noqa: E402
from examwatch.store import engine  # noqa: E402
from harness.servers import Influx, Kannel, Mosquitto, current_user, free_port, wait_for  # noqa: E402
from harness.stack import EXAMWATCH, _toml  # noqa: E402

app = typer.Typer(add_completion=False)
MISS_AFTER_S = 30.0


class Proc:
    """A service child process, ready when its log says it is connected."""

    def __init__(self, root: Path, name: str, cmd: list[str], ready: str = "") -> None:
        self.log = root / f"{name}.out"
        self.ready_text = ready
        self.name = name
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        wait_for(lambda: self.ready_text in self.log.read_text(errors="replace") or self.proc.poll() is not None,
                 60, self.name)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def write_settings(tmp: Path, influx: Influx, kannel: Kannel, port: int, secret: str, without: set[str]) -> Path:
    """The settings file every service of the run reads: one store, the shipped roster, Kannel."""
    doc: dict[str, Any] = {
        "secret": secret, "inventory": str(tmp / "district.yaml"), "timetable": str(ROOT / "config" / "timetable.yaml"),
        "mqtt": {"port": port},
        "influx": {"url": influx.url, "database": "bench"},
        "broker": {"port": port, "data_dir": str(tmp / "mosquitto"), "user": current_user()},
        "ingest": {"spool_dir": str(tmp / "spool"), "metrics_port": 0},
        "store": {"url": f"sqlite:///{tmp}/rules.db"},
        "rules": {"rules_dir": str(rules_dir(tmp, without))},
        "notify": {"roster": str(ROOT / "config" / "roster.yaml"), "state_dir": str(tmp / "notify"),
                   "store_url": f"sqlite:///{tmp}/notify.db",
                   "kannel_url": kannel.sendsms_url, "kannel_username": kannel.user,
                   "kannel_password": kannel.password, "rate_per_phone": 1000},
    }
    config = tmp / "examwatch.toml"
    config.write_text(_toml(doc))
    # The notifier keeps its outbox in a store of its own (issue 15.2: the two never wait on one
    # write lock); written as its [store] so that it holds whether or not it reads notify.store_url.
    doc["store"] = {"url": f"sqlite:///{tmp}/notify.db"}
    (tmp / "notify.toml").write_text(_toml(doc))
    return config


def rules_dir(tmp: Path, without: set[str]) -> Path:
    """config/rules, or a copy of it without the rules of the types in ``without``."""
    if not without:
        return ROOT / "config" / "rules"
    out = tmp / "rules"
    out.mkdir()
    for f in (ROOT / "config" / "rules").glob("*.yaml"):
        doc = yaml.safe_load(f.read_text())
        doc["rules"] = [r for r in doc["rules"] if r["type"] not in without]
        (out / f.name).write_text(yaml.safe_dump(doc, allow_unicode=True))
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def power_report(device: str, mains_v: float) -> bytes:
    rng = random.Random()
    lost = mains_v < 100
    return json.dumps({
        "ts": time.time_ns() // 1_000_000, "device": device, "mains_v": mains_v,
        "current_a": 0.0 if lost else round(rng.uniform(3, 5), 2), "frequency_hz": 0.0 if lost else 50.0,
        "on_ups": False, "ups_battery_pct": 100.0, "ups_minutes_left": 150.0, "temperature_c": 21.0,
        "humidity_pct": 45.0, "door_open": False}).encode()


@app.command()
def main(
    injections: Annotated[int, typer.Option(min=1, help="power losses to inject (round robin over the sites)")] = 210,
    warmup_s: Annotated[float, typer.Option(help="background load before the first injection")] = 15.0,
    interval_s: Annotated[int, typer.Option(help="each device reports this often (background load)")] = 5,
    keep: Annotated[bool, typer.Option(help="keep the temporary directory")] = False,
    without: Annotated[list[str] | None, typer.Option(help="run the shipped rules minus rules of this type")] = None,
) -> None:
    """Measure publish → SMS accepted by Kannel under a 21-site district's background load."""
    tmp = Path(tempfile.mkdtemp(prefix="alert-latency-"))
    inv_data = sample.district()
    inv = Inventory.model_validate(inv_data)
    with (tmp / "district.yaml").open("w") as f:
        sample.dump(inv_data, f)
    influx = Influx(tmp / "influxd")
    kannel = Kannel(tmp / "kannel")
    port = free_port()
    secret = secrets.token_urlsafe(24)
    config = write_settings(tmp, influx, kannel, port, secret, set(without or ()))
    settings = load_settings(config)
    files = broker.write(inv, secret, settings.broker, tmp / "broker")
    mosq = Mosquitto(tmp / "mosquitto", files.conf, port)
    procs: list[Proc] = []
    gateways: dict[str, Any] = {}
    try:
        influx.start()
        mosq.start()
        kannel.start()
        for name, ready in (("ingest", "connected (session present"), ("rules", "connected (session present"),
                            ("notify", "connected (session present")):
            cfg = tmp / "notify.toml" if name == "notify" else config
            p = Proc(tmp, name, [EXAMWATCH, name, "--config", str(cfg)], ready)
            p.wait_ready()
            procs.append(p)
        sim = Proc(tmp, "simulate", [EXAMWATCH, "simulate", "--config", str(config), "--interval", str(interval_s)])
        procs.append(sim)
        first_report(settings, secret, sim)
        time.sleep(warmup_s)  # the background load runs; nothing is synchronised on this
        store = engine(settings.store.url)
        results = probes(settings, secret, kannel, tmp, inv, gateways, injections)
        report(results, interval_s, len(inv.devices), store)
    finally:
        for c in gateways.values():
            c.disconnect()
            c.loop_stop()
        for p in reversed(procs):
            p.stop()
        kannel.stop()
        mosq.stop()
        influx.stop()
        if keep:
            typer.echo(f"kept {tmp}", err=True)


def probes(settings: Any, secret: str, kannel: Kannel, tmp: Path, inv: Inventory, gateways: dict[str, Any],
           injections: int) -> list[dict[str, float]]:
    """Inject the power losses, each followed by a floor probe; every client goes into ``gateways``
    (closed by the caller)."""
    for s in inv.sites:
        user = credentials.gateway_user(s.id)
        c = mqtt.client(settings.mqtt, f"bench-{user}", user, credentials.password(secret, user))
        mqtt.connect_and_wait(c, settings.mqtt, clean_start=True)
        gateways[s.id] = c
    seen = observe(settings, secret)
    gateways["_observer"] = seen.pop("client")
    floor = Floor(settings, secret, kannel, tmp / "floor.db")
    gateways["_floor_sub"], gateways["_floor_pub"] = floor.sub, floor.pub
    store, notes = engine(settings.store.url), engine(f"sqlite:///{tmp}/notify.db")
    results = []
    for i in range(injections):
        results.append(inject(store, notes, gateways, seen, inv.sites[i % len(inv.sites)].id))
        results[-1]["floor"] = floor.probe()
    return results


def first_report(settings: Any, secret: str, sim: Proc) -> None:
    """Wait until the simulator's telemetry reaches the broker."""
    got = threading.Event()
    user = credentials.service_user("ingest")
    c = mqtt.client(settings.mqtt, "bench-first-report", user, credentials.password(secret, user))
    c.on_message = lambda _c, _u, _msg: got.set()
    mqtt.connect_and_wait(c, settings.mqtt, clean_start=True)
    c.subscribe(f"{topics.ROOT}/+/+/+/telemetry", qos=0)
    try:
        wait_for(lambda: got.is_set() or sim.proc.poll() is not None, 60, "the simulator's first report")
    finally:
        c.disconnect()
        c.loop_stop()
    if sim.proc.poll() is not None:
        raise RuntimeError(f"simulate exited: {sim.log.read_text()[-2000:]}")


def observe(settings: Any, secret: str) -> dict[str, Any]:
    """Receive times of the power_mains_lost transitions, by transition id (plus the client)."""
    seen: dict[str, Any] = {}
    user = credentials.service_user("notifier")

    def on_message(_c: Any, _u: object, msg: Any) -> None:
        seen[json.loads(msg.payload)["transition_id"]] = time.time_ns()

    c = mqtt.client(settings.mqtt, "bench-observer", user, credentials.password(secret, user))
    c.on_message = on_message
    mqtt.connect_and_wait(c, settings.mqtt, clean_start=True)
    c.subscribe(f"{topics.ROOT}/_alarm/+/power_mains_lost/+", qos=1)
    seen["client"] = c
    return seen


def inject(store: sa.Engine, notes: sa.Engine, gateways: dict[str, Any], seen: dict[str, int],
           site: str) -> dict[str, float]:
    """One power loss at ``site``: legs in ms (the notification in the notifier's store, the
    transition's receive time in the rules engine's)."""
    device = f"{site}-VAULT-PWR1"
    topic = topics.device_topic(site, "power", device, "telemetry")
    q = sa.text(
        "SELECT created_ns, sent_ns, cause FROM notification "
        "WHERE kind = 'alert' AND person = :person AND created_ns > :t0 AND status = 'sent' AND text LIKE '%市电中断%'")
    found: dict[str, int] = {}

    def sent() -> bool:
        with notes.connect() as conn:
            row = conn.execute(q, {"person": f"chief-{site}", "t0": t0}).first()
        if row is None:
            return False
        alarm_id, seq = (int(x) for x in row.cause.split("."))
        with store.connect() as conn:
            at = conn.execute(sa.text("SELECT at_ns FROM alarm_transition WHERE alarm_id = :a AND seq = :s"),
                              {"a": alarm_id, "s": seq}).scalar_one()
        found.update(created=row.created_ns, sent=row.sent_ns, recv=at, mqtt=seen.get(row.cause, 0))
        return True

    t0 = time.time_ns()
    gateways[site].publish(topic, power_report(device, 0.0), qos=1)
    try:
        wait_for(sent, MISS_AFTER_S, f"the SMS for {site}", interval=0.002)
    except TimeoutError:
        gateways[site].publish(topic, power_report(device, 221.0), qos=1).wait_for_publish(10)
        return {"missed": 1.0}
    gateways[site].publish(topic, power_report(device, 221.0), qos=1).wait_for_publish(10)
    ms = 1e6
    legs = {"total": (found["sent"] - t0) / ms, "to_rules": (found["recv"] - t0) / ms,
            "notify_to_kannel": (found["sent"] - found["created"]) / ms}
    if found["mqtt"]:  # the observer saw the transition (it always should; a miss is left out, not guessed)
        legs.update(rules_to_mqtt=(found["mqtt"] - found["recv"]) / ms,
                    mqtt_to_notify=(found["created"] - found["mqtt"]) / ms)
    return legs


class Floor:
    """The minimal chain (see the module's docstring): publish → paho → SQLite commit → sendsms → accepted."""

    def __init__(self, settings: Any, secret: str, kannel: Kannel, db: Path) -> None:
        self.db = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE alarm (id INTEGER PRIMARY KEY, t INTEGER, payload BLOB)")
        self.db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, alarm INTEGER, phone TEXT, sent INTEGER)")
        url = urllib.parse.urlsplit(kannel.sendsms_url)
        self.http = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=5)
        self.query = {"username": kannel.user, "password": kannel.password, "to": "13999999999",
                      "from": "10690000", "charset": "UTF-8", "coding": "2"}
        self.path = url.path
        self.done = threading.Event()
        self.took_ms = 0.0
        # svc-rules may write it and svc-api read it; the services ignore it (a service topic nobody handles)
        self.topic = f"{topics.ROOT}/_readiness/_floor"
        self.sub = self._client(settings, secret, "api", "bench-floor-sub")
        self.sub.on_message = self._on_message
        self.sub.subscribe(self.topic, qos=1)
        self.pub = self._client(settings, secret, "rules", "bench-floor-pub")

    @staticmethod
    def _client(settings: Any, secret: str, service: str, client_id: str) -> Any:
        user = credentials.service_user(service)
        c = mqtt.client(settings.mqtt, client_id, user, credentials.password(secret, user))
        mqtt.connect_and_wait(c, settings.mqtt, clean_start=True)
        return c

    def _on_message(self, _c: Any, _u: object, msg: Any) -> None:
        t0 = int(msg.payload)
        with self.db:
            alarm = self.db.execute("INSERT INTO alarm (t, payload) VALUES (?, ?)", (t0, msg.payload)).lastrowid
            self.db.execute("INSERT INTO outbox (alarm, phone, sent) VALUES (?, ?, 0)", (alarm, "13999999999"))
        query = urllib.parse.urlencode({**self.query, "text": f"floor {alarm}"})
        self.http.request("GET", f"{self.path}?{query}")
        body = self.http.getresponse().read().decode()
        if not body.startswith("0:"):
            raise RuntimeError(f"Kannel did not accept the floor probe: {body}")
        with self.db:
            self.db.execute("UPDATE outbox SET sent = 1 WHERE alarm = ?", (alarm,))
        self.took_ms = (time.time_ns() - t0) / 1e6
        self.done.set()

    def probe(self) -> float:
        """One probe's publish → accepted, ms."""
        self.done.clear()
        self.pub.publish(self.topic, str(time.time_ns()).encode(), qos=1)
        if not self.done.wait(MISS_AFTER_S):
            raise RuntimeError("the floor probe got no SMS accepted")
        return self.took_ms


def report(all_results: list[dict[str, float]], interval_s: int, devices: int, store: sa.Engine) -> None:
    results = [r for r in all_results if "missed" not in r]
    rate = devices / interval_s
    typer.echo(f"{len(all_results)} storage-room power losses over 21 sites; background {devices} devices every "
               f"{interval_s} s (~{rate:.0f} msg/s) through ingest, rules and notify")
    load = os.getloadavg()
    typer.echo(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    typer.echo("| leg | p50 ms | p99 ms | max ms | n |\n|---|---|---|---|---|")
    for leg, title in (("total", "publish → SMS accepted by Kannel"),
                       ("floor", "floor: publish → paho → SQLite commit → sendsms accepted (same run)"),
                       ("to_rules", "publish → rules engine received"),
                       ("rules_to_mqtt", "rules received → alarm transition on MQTT (rules commit, publish)"),
                       ("mqtt_to_notify", "alarm transition on MQTT → notification stored"),
                       ("notify_to_kannel", "notification stored → Kannel accepted")):
        v = [r[leg] for r in results if leg in r]
        if v:
            typer.echo(f"| {title} | {statistics.median(v):.1f} | {pct(v, 99):.1f} | {max(v):.1f} | {len(v)} |")
    missed = len(all_results) - len(results)
    if missed:
        typer.echo(f"{missed} injections got no SMS within {MISS_AFTER_S:.0f} s (left out of the table)")
    with store.connect() as conn:
        counts = conn.execute(sa.text("SELECT a.severity, count(*) FROM alarm_transition t JOIN alarm a "
                                      "ON a.id = t.alarm_id GROUP BY a.severity")).all()
        unsent = conn.execute(sa.text("SELECT count(*) FROM alarm_transition WHERE NOT sent")).scalar()
    typer.echo("alarm transitions during the run: " + ", ".join(f"{n} {sev}" for sev, n in counts)
               + f"; {unsent} not yet published by the rules engine at the end")


if __name__ == "__main__":
    app()
