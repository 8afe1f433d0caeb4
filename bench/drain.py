"""``python -m bench.drain``: what reading MQTT costs, paho-mqtt against ingest's own reader.

A persistent session (MQTT v5, ``ReceiveMaximum`` 65,535) is made and left; a site gateway
publishes a QoS 1 backlog of the bench mix into it; then a reader process connects to the
session, takes every message and acknowledges them in batches of 5,000, as ingest does. The
figure is the reader's CPU from connection to the last message, per message: paho-mqtt 2.2 with
``manual_ack`` (``on_message`` and ``Client.ack``), or ``examwatch.subscriber.Subscriber``. Nothing is
decoded: it is the cost of MQTT alone. Rounds alternate the two readers on the same broker.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from bench.child import REPO

READERS = ("paho", "examwatch")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def read(reader: str, port: int, secret: str, client_id: str, count: int) -> dict[str, float]:
    """Connect ``client_id``'s session with ``reader``, take ``count`` messages; CPU and wall seconds."""
    from examwatch import credentials, mqtt, topics  # noqa: PLC0415 - the reader process only
    from examwatch.settings import MqttSettings  # noqa: PLC0415
    from examwatch.subscriber import Subscriber  # noqa: PLC0415

    user = credentials.service_user("ingest")
    password = credentials.password(secret, user)
    cfg = MqttSettings(port=port)
    done, got, acks = threading.Event(), [0], []
    t0 = w0 = 0.0
    flt = f"$share/{client_id}/{topics.ALL}"
    if reader == "paho":
        c = mqtt.client(cfg, client_id, user, password, manual_ack=True)

        def on_message(cl: object, _u: object, m: object) -> None:
            got[0] += 1
            acks.append(m.mid)  # type: ignore[attr-defined]
            if len(acks) >= 5000 or got[0] >= count:
                for mid in acks:
                    c.ack(mid, 1)
                acks.clear()
            if got[0] >= count:
                done.set()

        c.on_message = on_message
        c.on_connect = lambda cl, *_: cl.subscribe(flt, qos=1)
        t0, w0 = _cpu(), time.monotonic()
        mqtt.connect_and_wait(c, cfg, session_expiry_s=3600, receive_maximum=65535)
        done.wait(300)
        cpu, wall = _cpu() - t0, time.monotonic() - w0
        c.disconnect()
        c.loop_stop()
    else:
        sub: Subscriber

        def on_publish(_t: bytes, _p: bytes, mid: int, epoch: int, _r: int, _d: bool) -> None:
            got[0] += 1
            acks.append((mid, epoch))
            if len(acks) >= 5000 or got[0] >= count:
                sub.ack(list(acks))
                acks.clear()
            if got[0] >= count:
                done.set()

        sub = Subscriber(cfg, client_id, user, password, flt, on_publish, session_expiry_s=3600,
                         receive_maximum=65535)
        t0, w0 = _cpu(), time.monotonic()
        sub.connect()
        done.wait(300)
        cpu, wall = _cpu() - t0, time.monotonic() - w0
        sub.close()
    return {"received": got[0], "cpu_s": cpu, "wall_s": wall}


def make_session(port: int, secret: str, client_id: str) -> None:
    """Leave a persistent session subscribed to every device topic, for a backlog to gather in."""
    from examwatch import credentials, mqtt, topics  # noqa: PLC0415
    from examwatch.settings import MqttSettings  # noqa: PLC0415

    user = credentials.service_user("ingest")
    cfg = MqttSettings(port=port)
    c = mqtt.client(cfg, client_id, user, credentials.password(secret, user))
    subscribed = threading.Event()
    c.on_subscribe = lambda *_: subscribed.set()
    mqtt.connect_and_wait(c, cfg, session_expiry_s=3600, receive_maximum=65535)
    c.subscribe(f"$share/{client_id}/{topics.ALL}", qos=1)
    if not subscribed.wait(10):
        raise SystemExit("no SUBACK")
    c.disconnect()
    c.loop_stop()


def _backlog(stack: object, count: int) -> list[tuple[str, bytes]]:
    from harness.stack import device_topic, telemetry  # noqa: PLC0415

    inv = stack.inventory  # type: ignore[attr-defined]
    devices = [d for d, ref in inv.devices.items() if ref.site == "S01"]
    base = time.time_ns() // 1_000_000 - 3_600_000
    return [(device_topic(stack, d), telemetry(d, inv.devices[d].kind, ts_ms=base + i))  # type: ignore[arg-type]
            for i, d in ((i, devices[i % len(devices)]) for i in range(count))]


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    messages: Annotated[int, typer.Option(min=100, help="messages in each backlog")] = 50_000,
    rounds: Annotated[int, typer.Option(min=1, help="rounds, each reading one backlog with each reader")] = 3,
) -> None:
    """Drain a QoS 1 backlog with paho-mqtt and with ingest's reader; CPU µs per message of each."""
    from harness.servers import Influx  # noqa: PLC0415
    from harness.stack import Stack, publish_all  # noqa: PLC0415

    figures: dict[str, list[float]] = {r: [] for r in READERS}
    with tempfile.TemporaryDirectory(prefix="examwatch-drain-") as tmp:
        stack = Stack(Path(tmp), Influx(Path(tmp) / "unused"), "unused", rooms=30)
        stack.mosquitto.start()
        try:
            msgs = _backlog(stack, messages)
            for rnd in range(rounds):
                for reader in READERS:
                    cid = f"drain-{reader}-{rnd}"
                    args = [sys.executable, "-m", "bench.drain", "--", reader, str(stack.mqtt_port), stack.secret, cid]
                    subprocess.run([*args, "0"], check=True, cwd=REPO)  # make the session
                    publish_all(stack.gateway("S01"), msgs)
                    out = subprocess.run([*args, str(messages)], check=True, cwd=REPO, capture_output=True, text=True)
                    got = json.loads(out.stdout.strip().splitlines()[-1])
                    if got["received"] != messages:
                        raise SystemExit(f"{reader}: {got['received']} of {messages} messages")
                    figures[reader].append(1e6 * got["cpu_s"] / messages)
                    typer.echo(f"round {rnd + 1} {reader:9} {figures[reader][-1]:6.1f} µs/msg CPU, "
                               f"{messages / got['wall_s']:,.0f} msg/s")
        finally:
            stack.close()
    for reader in READERS:
        typer.echo(f"{reader}: median {statistics.median(figures[reader]):.1f} µs/msg "
                   f"({min(figures[reader]):.1f}–{max(figures[reader]):.1f})")


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--":
        _, _, reader_, port_, secret_, cid_, count_ = sys.argv
        if int(count_):
            print(json.dumps(read(reader_, int(port_), secret_, cid_, int(count_))))
        else:
            make_session(int(port_), secret_, cid_)
    else:
        app()
