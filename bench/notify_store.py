"""Why the notifier keeps its own store: its commit time beside a busy rules engine, shared file or not.

Run: ``.venv/bin/python -m bench.notify_store`` (about 20 s).

A child process stands in for the rules engine under telemetry load: it holds the SQLite write
lock as the engine does, one transaction open from the first message of a commit interval
(``rules.commit_interval_ms``, 50 ms by default) to its end, writing rule state all along, then
commits and begins again. Meanwhile this process commits what the notifier commits for one alarm
(its ``notify_alarm`` row and one ``notification``) every few milliseconds and times each commit,
first in the same SQLite file as the writer, then in a file of its own. The figures are p50, p99
and max in ms, both layouts measured in the same run.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from examwatch.store import open_store, writing

INTERVAL_S = 0.05  # the rules engine's default commit interval
SAMPLES = 300
GAP_S = 0.002  # between the engine's commit and its next transaction: acknowledging, taking the next batch


def writer(url: str) -> None:
    """The stand-in for a busy rules engine: write lock held for each whole commit interval."""
    store = open_store(url)
    table = sa.table("rule_state", sa.column("rule"), sa.column("subject"), sa.column("state"))
    print("ready", flush=True)
    i = 0
    while True:
        with writing(store) as conn:
            end = time.monotonic() + INTERVAL_S
            while time.monotonic() < end:
                i += 1
                conn.execute(sa.delete(table).where(table.c.rule == "bench", table.c.subject == f"d{i % 500}"))
                conn.execute(sa.insert(table).values(rule="bench", subject=f"d{i % 500}", state="[1]"))
                time.sleep(0.0005)
        time.sleep(GAP_S)


def measure(url: str) -> list[float]:
    """Commit times (ms) of the notifier's per-alarm transaction."""
    store = open_store(url)
    na = sa.table("notify_alarm", *(sa.column(c) for c in (
        "alarm_id", "seq", "rule", "site", "subject", "subject_type", "severity", "state", "drill", "fired_cause",
        "level", "reminders", "updated_ns")))
    n = sa.table("notification", *(sa.column(c) for c in (
        "alarm_id", "cause", "kind", "level", "person", "address", "text", "drill", "status", "attempts",
        "created_ns", "next_try_ns", "result")))
    out = []
    for i in range(1, SAMPLES + 1):
        started = time.perf_counter()
        with contextlib.suppress(sa.exc.OperationalError), writing(store) as conn:  # locked out: counted as its wait
            conn.execute(sa.insert(na).values(alarm_id=i, seq=1, rule="power_mains_lost", site="S01", subject="x",
                                              subject_type="device", severity="critical", state="firing", drill=False,
                                              fired_cause=f"{i}.1", level=1, reminders=0, updated_ns=0))
            conn.execute(sa.insert(n).values(alarm_id=i, cause=f"{i}.1", kind="alert", level=1, person="p",
                                             address="13900000001", text="x", drill=False, status="queued",
                                             attempts=0, created_ns=0, next_try_ns=0, result=""))
        out.append((time.perf_counter() - started) * 1e3)
        time.sleep(0.003)
    store.dispose()
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-notify-store-") as tmp:
        shared, own = f"sqlite:///{tmp}/state.db", f"sqlite:///{Path(tmp)}/notify.db"
        for url in (shared, own):  # migrated before the writer holds the lock
            open_store(url).dispose()
        child = subprocess.Popen([sys.executable, "-m", "bench.notify_store", "writer", shared],
                                 stdout=subprocess.PIPE, text=True)
        try:
            if child.stdout is None or child.stdout.readline().strip() != "ready":
                raise RuntimeError("the writer did not start")
            time.sleep(0.5)  # let the writer reach its steady state
            results = {"shared with the rules engine": measure(shared),
                       "its own file": measure(own)}
        finally:
            child.kill()
            child.wait()
    print(f"notifier commit per alarm, {SAMPLES} samples, a writer holding the lock {INTERVAL_S * 1e3:.0f} ms "
          f"per commit interval, {GAP_S * 1e3:.0f} ms apart")
    print("| notifier store | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {pct(values, 50):.2f} | {pct(values, 99):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "writer":
        writer(sys.argv[2])
    else:
        main()
