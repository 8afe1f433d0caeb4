"""``python -m bench.phone_ack``: SMS reply sent → acknowledgement recorded, on loopback.

Starts mosquitto, ``examwatch api serve`` (SQLite store) and Kannel (bearerbox, smsbox, the
fakesmsc that receives every text, and the receive-only fake SMSC link replies come in on),
configured as ``examwatch kannel-config`` does. Each probe opens an alarm at S01, records what
the notifier would have (its short code, level 1 told, one alert to S01's chief), then the chief's
phone replies ``1 <code>`` on the fakesmsc link; the probe ends when the store has the
acknowledgement (polled every 0.5 ms), and again when the answer SMS reaches the fakesmsc. The
baseline, in the same run, posts the same reply straight to the API's ``/sms/reply`` as Kannel
would (no gateway): what the API itself takes. Probes run one after another, ``--gap-ms`` apart:
replies come seconds apart in life, and back to back they meet Kannel's bearerbox–smsbox link
(no TCP_NODELAY) while it still waits for the delayed ACK of the previous exchange, 40 ms each.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import sqlalchemy as sa
import typer

from examwatch import links
from examwatch.alarm import Severity
from examwatch.store import lifecycle, writing
from examwatch.store.notify_models import NotifyAlarm
from harness.api_stack import ApiStack
from harness.notify_kit import PHONES
from harness.servers import Influx, Kannel

REPO = Path(__file__).resolve().parent.parent
PHONE = PHONES["chief-S01"]
DEVICE = "S01-VAULT-PWR1"


def _acknowledged(stack: ApiStack, alarm_id: int, deadline_s: float = 10.0) -> float:
    """perf_counter() when the store first shows the alarm acknowledged (polled every 0.5 ms)."""
    end = time.perf_counter() + deadline_s
    with stack.store.connect() as conn:
        while True:
            state = lifecycle.get(conn, alarm_id).state
            conn.rollback()  # a fresh snapshot on the next read
            now = time.perf_counter()
            if state == "acknowledged":
                return now
            if now > end:
                raise TimeoutError(f"alarm {alarm_id} not acknowledged within {deadline_s:.0f} s")
            time.sleep(0.0005)


def _answered(kannel: Kannel, out: Path, before: int) -> float:
    """perf_counter() when the fakesmsc has printed message ``before + 1``: its log's size is
    watched (cheap), and parsed only when it grew."""
    size = out.stat().st_size
    end = time.perf_counter() + 10
    while True:
        now_size = out.stat().st_size
        now = time.perf_counter()
        if now_size != size:
            size = now_size
            if len(kannel.smsc.messages()) > before:
                return now
        if now > end:
            raise TimeoutError("the answer SMS did not reach the fakesmsc within 10 s")
        time.sleep(0.0005)


def _close(stack: ApiStack, alarm_id: int) -> None:
    lifecycle.resolve(stack.store, alarm_id, "bench", "probe done")
    na = NotifyAlarm.__table__
    with writing(stack.store) as conn:
        conn.execute(sa.update(na).where(na.c.alarm_id == alarm_id).values(state="resolved", code=None))


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def _summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "p50_ms": round(_pct(xs, 50), 2), "p99_ms": round(_pct(xs, 99), 2),
            "max_ms": round(max(xs), 2), "mean_ms": round(statistics.fmean(xs), 2)}


def main(probes: Annotated[int, typer.Option(min=10, help="probes per path")] = 300,
         gap_ms: Annotated[float, typer.Option(min=0, help="idle time between probes")] = 250,
         out: Annotated[Path | None, typer.Option(help="write the figures here as JSON")] = None) -> None:
    """Measure SMS reply → acknowledgement recorded, through Kannel and straight to the API."""
    root = Path(tempfile.mkdtemp(prefix="examwatch-phone-"))
    influx = Influx(root / "influxd")
    influx.start()
    stack = ApiStack(root / "stack", influx, "bench_phone")
    stack.mosquitto.start()
    kannel: Kannel | None = None
    try:
        stack.start_api()
        kannel = Kannel(root / "kannel", api_url=stack.url, secret=stack.secret)
        kannel.start()
        key = links.callback_key(stack.secret)
        through, answered, direct = [], [], []
        with httpx.Client(base_url=stack.url, timeout=10) as http:
            for i in range(2 * probes + 10):
                alarm = stack.open_alarm(DEVICE, "power_mains_lost", severity=Severity.CRITICAL)
                code = f"B{i}"
                stack.told(alarm, code, "chief-S01", PHONE)
                smsc_out = kannel.smsc.root / "fakesmsc.out"
                before = len(kannel.smsc.messages())
                via_kannel = i % 2 == 0  # interleaved: both paths see the same machine
                t0 = time.perf_counter()
                if via_kannel:
                    kannel.reply(PHONE, f"1 {code}")
                else:
                    r = http.post("/sms/reply", params={"k": key, "from": PHONE, "to": kannel.number,
                                                        "id": f"bench-{i}"}, content=f"1 {code}".encode())
                    r.raise_for_status()
                t1 = _acknowledged(stack, alarm)
                if via_kannel:
                    t2 = _answered(kannel, smsc_out, before)
                if i >= 10:  # the first few warm up connections and caches
                    (through if via_kannel else direct).append((t1 - t0) * 1000)
                    if via_kannel:
                        answered.append((t2 - t0) * 1000)
                _close(stack, alarm)
                time.sleep(gap_ms / 1000)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=False).stdout.strip()
        result = {"commit": commit, "gap_ms": gap_ms, "load_avg_1m": round(os.getloadavg()[0], 2),
                  "reply_to_ack_through_kannel": _summary(through),
                  "reply_to_answer_sms_at_fakesmsc": _summary(answered),
                  "baseline_post_straight_to_api": _summary(direct)}
        result["ratio_p99_kannel_to_baseline"] = round(
            result["reply_to_ack_through_kannel"]["p99_ms"] / result["baseline_post_straight_to_api"]["p99_ms"], 2)
        typer.echo(json.dumps(result, indent=1))
        if out is not None:
            out.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        if kannel is not None:
            kannel.stop()
        stack.close()
        influx.stop()


if __name__ == "__main__":
    typer.run(main)
