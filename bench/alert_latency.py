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

    .venv/bin/python bench/alert_latency.py --injections 210
"""

from __future__ import annotations

import json
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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
        "store": {"url": f"sqlite:///{tmp}/state.db"},
        "rules": {"rules_dir": str(rules_dir(tmp, without))},
        "notify": {"roster": str(ROOT / "config" / "roster.yaml"), "state_dir": str(tmp / "notify"),
                   "store_url": f"sqlite:///{tmp}/notify.db",
                   "kannel_url": kannel.sendsms_url, "kannel_username": kannel.user,
                   "kannel_password": kannel.password, "rate_per_phone": 1000},
    }
    config = tmp / "examwatch.toml"
    config.write_text(_toml(doc))
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
            p = Proc(tmp, name, [EXAMWATCH, name, "--config", str(config)], ready)
            p.wait_ready()
            procs.append(p)
        sim = Proc(tmp, "simulate", [EXAMWATCH, "simulate", "--config", str(config), "--interval", str(interval_s)])
        procs.append(sim)
        first_report(settings, secret, sim)
        time.sleep(warmup_s)  # the background load runs; nothing is synchronised on this
        for s in inv.sites:
            user = credentials.gateway_user(s.id)
            c = mqtt.client(settings.mqtt, f"bench-{user}", user, credentials.password(secret, user))
            mqtt.connect_and_wait(c, settings.mqtt, clean_start=True)
            gateways[s.id] = c
        seen = observe(settings, secret)
        gateways["_observer"] = seen.pop("client")
        store = engine(settings.store.url)
        # The notifier keeps its outbox in a store of its own; the legs join it with the shared one.
        sa.event.listen(store, "connect", lambda c, _r: c.execute(
            f"ATTACH DATABASE '{settings.notify_store_url.removeprefix('sqlite:///')}' AS notify"))
        results = [inject(store, gateways, seen, inv.sites[i % len(inv.sites)].id) for i in range(injections)]
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


def inject(store: sa.Engine, gateways: dict[str, Any], seen: dict[str, int], site: str) -> dict[str, float]:
    """One power loss at ``site``: legs in ms."""
    device = f"{site}-VAULT-PWR1"
    topic = topics.device_topic(site, "power", device, "telemetry")
    q = sa.text(
        "SELECT n.created_ns, n.sent_ns, t.at_ns, n.cause FROM notify.notification n "
        "JOIN alarm_transition t ON n.cause = t.alarm_id || '.' || t.seq "
        "WHERE n.kind = 'alert' AND n.person = :person AND n.created_ns > :t0 AND n.status = 'sent' "
        "AND n.text LIKE '%市电中断%'")
    found: dict[str, int] = {}

    def sent() -> bool:
        with store.connect() as conn:
            row = conn.execute(q, {"person": f"chief-{site}", "t0": t0}).first()
        if row is not None:
            found.update(created=row.created_ns, sent=row.sent_ns, recv=row.at_ns, mqtt=seen.get(row.cause, 0))
        return row is not None

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


def report(all_results: list[dict[str, float]], interval_s: int, devices: int, store: sa.Engine) -> None:
    results = [r for r in all_results if "missed" not in r]
    rate = devices / interval_s
    typer.echo(f"{len(all_results)} storage-room power losses over 21 sites; background {devices} devices every "
               f"{interval_s} s (~{rate:.0f} msg/s) through ingest, rules and notify")
    typer.echo("| leg | p50 ms | p99 ms | max ms | n |\n|---|---|---|---|---|")
    for leg, title in (("total", "publish → SMS accepted by Kannel"), ("to_rules", "publish → rules engine received"),
                       ("rules_to_mqtt", "rules received → alarm transition on MQTT (rules commit, InfluxDB, publish)"),
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
