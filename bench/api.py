"""``python -m bench.api``: the command-center API under a steady request rate, on a live simulated district.

Starts influxd, mosquitto (config, passwords and ACL from examwatch.broker), ``examwatch
ingest``, ``examwatch simulate`` over the 21-site district (config/district.yaml, ~2,700
devices reporting every 5 s) and ``examwatch api serve``, with two active alarms per site and
the timetable shifted so the next paper is an hour away. When the API shows the devices online
it runs, one after another, an open-loop load of ``--rate`` requests per second for
``--seconds`` against GET /health (the baseline), GET /sites and GET /sites/{id} (the 21 ids in
turn). Requests are sent on schedule whatever the answers' pace; each latency is measured from
the request's scheduled time, so a stall is not hidden by requests that were never sent
(coordinated omission). Everything runs on loopback on this machine.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer

from examwatch import broker, inventory, timetable
from examwatch.alarm import Severity, Subject
from examwatch.store import open_store, writing
from examwatch.store.access import Role, create_token
from examwatch.store.lifecycle import open_alarm
from harness.api_stack import ApiProcess
from harness.servers import Influx, Mosquitto, current_user, free_port, wait_for
from harness.stack import EXAMWATCH, IngestProcess, _toml

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Phase:
    name: str
    requests: int
    errors: int
    error_kinds: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    achieved_rps: float
    api_cpu_ms_per_req: float
    server_p99_ms_at_most: float  # from the API's own histogram: handling time, without waiting for a core or socket
    cores_busy: dict[str, float]  # CPU seconds per second of each process during the phase
    load_avg: float  # the machine's 1-minute load average at the end (other work shares the cores)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _buckets(metrics: str, route: str) -> dict[float, float]:
    """Cumulative counts of the API's own request-time histogram for ``route``, by upper bound."""
    out: dict[float, float] = {}
    for m in re.finditer(r'examwatch_api_request_seconds_bucket\{le="([^"]+)",route="([^"]+)"\} (\S+)', metrics):
        if m.group(2) == route:
            out[float(m.group(1))] = float(m.group(3))
    return out


def _server_p99_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """Upper bound of the bucket holding the 99th percentile of the API's handling time in a phase."""
    counts = {le: after.get(le, 0) - before.get(le, 0) for le in sorted(after)}
    total = counts.get(float("inf"), 0)
    return next((le * 1000 for le, n in counts.items() if total and n >= 0.99 * total), float("nan"))


def _pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


class _Conn:
    """One kept-alive HTTP/1.1 connection. Hand-written: at 200 req/s a Python HTTP client's own CPU
    (httpx: about a millisecond a request) would compete with the API for the same two cores."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, auth: bytes) -> None:
        self.reader, self.writer, self.auth = reader, writer, auth

    async def get(self, path: str) -> int:
        self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\n" + self.auth + b"\r\n")
        head = await self.reader.readuntil(b"\r\n\r\n")
        m = _LENGTH.search(head)
        if m is None:
            raise ValueError(f"no content-length in {head[:200]!r}")
        await self.reader.readexactly(int(m.group(1)))
        return int(head[9:12])


_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


class _Pool:
    """Kept-alive connections to the API; a new one whenever all are busy."""

    def __init__(self, url: str, token: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.auth = f"Authorization: Bearer {token}\r\n".encode()
        self.idle: list[_Conn] = []

    async def get(self, path: str) -> int:
        # A kept-alive connection the server closed while idle fails at once: retry on a new one.
        while self.idle:
            conn = self.idle.pop()
            try:
                status = await conn.get(path)
            except (ConnectionError, asyncio.IncompleteReadError):
                conn.writer.close()
                continue
            self.idle.append(conn)
            return status
        conn = _Conn(*await asyncio.open_connection(self.host, self.port), self.auth)
        status = await conn.get(path)
        self.idle.append(conn)
        return status

    def close(self) -> None:
        for conn in self.idle:
            conn.writer.close()


async def _load(url: str, token: str, name: str, paths: list[str], rate: float, seconds: float,
                pids: dict[str, int]) -> Phase:
    pool = _Pool(url, token)
    n = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    kinds: dict[str, int] = {}

    async def one(i: int, due: float) -> None:
        nonlocal errors
        try:
            status = await pool.get(paths[i % len(paths)])
            kind = "" if status == 200 else f"HTTP {status}"
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            kind = type(exc).__name__
        if kind:
            errors += 1
            kinds[kind] = kinds.get(kind, 0) + 1
        latencies.append(time.perf_counter() - due)
        if os.environ.get("BENCH_SLOW") and latencies[-1] > 0.1:
            print(f"slow {name} at {due - start:.2f} s: {latencies[-1] * 1000:.0f} ms")

    start = time.perf_counter()
    for i in range(4):  # warm a connection and the device-state snapshot
        await one(i, time.perf_counter())
    latencies.clear()
    errors = 0
    kinds.clear()
    route = "/sites/{site_id}" if "{id}" in name else name.removeprefix("GET ")
    hist0 = _buckets(await _metrics(url, token), route)
    cpu0 = {k: _cpu_s(v) for k, v in pids.items()}
    gc.collect()
    gc.disable()  # a collection in the load generator would show up as the API's latency
    start = time.perf_counter()
    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    gc.enable()
    cpu = {k: round((_cpu_s(v) - cpu0[k]) / elapsed, 2) for k, v in pids.items()}
    pool.close()
    server_p99 = _server_p99_ms(hist0, _buckets(await _metrics(url, token), route))
    latencies.sort()
    return Phase(name, n, errors, kinds, round(_pct(latencies, 0.5) * 1000, 2), round(_pct(latencies, 0.99) * 1000, 2),
                 round(latencies[-1] * 1000, 2), round(n / elapsed, 1), round(cpu["api"] * elapsed / n * 1000, 3),
                 server_p99, cpu, os.getloadavg()[0])


async def _metrics(url: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        return (await client.get("/metrics")).text


class District:
    """The servers and processes of one run, under ``root``."""

    def __init__(self, root: Path, inventory_path: Path) -> None:
        self.root = root
        self.inv = inventory.load(inventory_path)
        self.influx = Influx(root / "influxd")
        mqtt_port, api_port = free_port(), free_port()
        secret = secrets.token_urlsafe(24)
        tt = timetable.load(REPO / "config" / "timetable.yaml")
        first = min(p.start for p in tt.papers)
        tt = tt.shifted(datetime.now(UTC) + timedelta(hours=1) - first)
        tt_path = root / "timetable.yaml"
        tt_path.write_text(json.dumps(tt.model_dump(mode="json"), ensure_ascii=False))
        self.store_url = f"sqlite:///{root / 'store.db'}"
        doc = {"secret": secret, "inventory": str(inventory_path), "timetable": str(tt_path),
               "mqtt": {"port": mqtt_port}, "influx": {"url": self.influx.url, "database": "bench_api"},
               "ingest": {"spool_dir": str(root / "spool"), "metrics_port": 0},
               "broker": {"port": mqtt_port, "data_dir": str(root / "mosquitto"), "user": current_user()},
               "store": {"url": self.store_url}, "api": {"port": api_port, "drills_dir": str(root / "drills")}}
        self.config = root / "examwatch.toml"
        self.config.write_text(_toml(doc))
        from examwatch.settings import load_settings  # noqa: PLC0415

        files = broker.write(self.inv, secret, load_settings(self.config).broker, root / "broker")
        self.mosquitto = Mosquitto(root / "mosquitto", files.conf, mqtt_port)
        self.ingest = IngestProcess(root / "logs", self.config, "1", 0)
        self.api = ApiProcess(root / "logs", self.config, api_port)
        self.url = f"http://127.0.0.1:{api_port}"
        self.simulator: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start everything; return a viewer token once the API sees the district online."""
        self.influx.start()
        self.mosquitto.start()
        self.ingest.start(timeout=30)
        store = open_store(self.store_url)
        token = create_token(store, "bench", Role.VIEWER, "bench")[1]
        with writing(store) as conn:
            for site in self.inv.sites:
                for d in site.devices[:2]:
                    open_alarm(conn, "bench_alarm", Subject.device(self.inv.devices[d.id]), severity=Severity.MAJOR,
                               message="bench", drill=False, at_ns=time.time_ns(), pending_for_s=0)
        log = (self.root / "logs" / "simulate.out").open("wb")
        self.simulator = subprocess.Popen([EXAMWATCH, "simulate", "--config", str(self.config), "--interval", "5"],
                                          stdout=log, stderr=subprocess.STDOUT)
        self.api.start(timeout=60)
        total = len(self.inv.devices)

        def online() -> bool:
            r = httpx.get(f"{self.url}/sites", params={"limit": 500}, headers={"Authorization": f"Bearer {token}"},
                          timeout=10)
            up = sum(k["online"] for s in r.json()["items"] for k in s["devices"].values())
            return up >= 0.99 * total

        wait_for(online, 120, "the district online in the API", interval=1)
        return token

    def pids(self) -> dict[str, int]:
        procs = {"api": self.api.proc, "influxd": self.influx.proc, "mosquitto": self.mosquitto.proc,
                 "ingest": self.ingest.proc, "simulate": self.simulator}
        out = {k: p.pid for k, p in procs.items() if p is not None}
        out["load generator"] = os.getpid()
        return out

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.send_signal(signal.SIGTERM)
            try:
                self.simulator.wait(20)
            except subprocess.TimeoutExpired:
                self.simulator.kill()
        for s in (self.api, self.ingest, self.mosquitto, self.influx):
            s.stop()


def main(
    rate: Annotated[float, typer.Option(min=1, max=2000, help="requests per second")] = 200,
    seconds: Annotated[float, typer.Option(min=1, max=300, help="duration of each endpoint's phase")] = 20,
    inventory_path: Annotated[Path, typer.Option("--inventory", help="district inventory")] = REPO
    / "config" / "district.yaml",
    out: Annotated[Path | None, typer.Option(help="also write the figures here as JSON")] = None,
) -> None:
    """Measure GET /health, GET /sites and GET /sites/{id} at a fixed request rate; print p50/p99."""
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        district = District(Path(tmp), inventory_path)
        try:
            token = district.start()
            pids = district.pids()
            sites = [f"/sites/{s.id}" for s in district.inv.sites]
            phases = [asyncio.run(_load(district.url, token, name, paths, rate, seconds, pids))
                      for name, paths in (("GET /health", ["/health"]), ("GET /sites", ["/sites"]),
                                          ("GET /sites/{id}", sites))]
        finally:
            district.stop()
    devices = len(district.inv.devices)
    print(f"{len(district.inv.sites)} sites, {devices} devices reporting every 5 s; {rate:.0f} req/s for "
          f"{seconds:.0f} s per endpoint, open loop")
    print("| endpoint | requests | errors | achieved req/s | p50 ms | p99 ms | max ms | API handling p99 ms ≤ "
          "| API CPU ms/req | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in phases:
        errors = f"{p.errors} {p.error_kinds}" if p.errors else "0"
        print(f"| `{p.name}` | {p.requests} | {errors} | {p.achieved_rps} | {p.p50_ms} | {p.p99_ms} | {p.max_ms} "
              f"| {p.server_p99_ms_at_most:g} | {p.api_cpu_ms_per_req} | {p.load_avg:.1f} |")
    for p in phases:
        print(f"cores busy during {p.name}: " + ", ".join(f"{k} {v}" for k, v in p.cores_busy.items()))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"at": datetime.now(UTC).isoformat(), "rate": rate, "seconds": seconds,
                                   "devices": devices, "phases": [asdict(p) for p in phases]}, indent=1))
    if any(p.errors for p in phases):
        sys.exit(1)


if __name__ == "__main__":
    typer.run(main)
