"""The alarm-latency benchmark's figures: one JSON document per run, and the Markdown for BENCHMARKS.md.

Issue 15 states the targets against this benchmark: p99 ≤ 50 ms for the default run (the
simulator's background only), ≤ 250 ms with 10,000 msg/s of telemetry and bursts of 100 alarms/s
in the background, and in any run no probe waiting over 1 s for its SMS. A figure is only worth
as much as what stood beside it, so the document carries the load average, the CPU each service
spent per telemetry message, peak RSS, the commit and the exact command.
"""

from __future__ import annotations

import statistics
from typing import Any

#: The legs of the table, in order, with their titles (bench/alert_latency.py measures them).
LEGS = (
    ("total", "**publish → SMS accepted by Kannel**"),
    ("floor", "floor: publish → paho → SQLite commit → sendsms accepted (same run)"),
    ("to_rules", "publish → rules engine received (transition `at_ns`)"),
    ("rules_to_mqtt", "rules received → alarm transition on MQTT (rules commit, publish)"),
    ("mqtt_to_notify", "alarm transition on MQTT → notification stored (notifier)"),
    ("notify_to_kannel", "notification stored → Kannel accepted (notifier + Kannel)"),
)
QUIET_P99_MS = 50.0
LOADED_P99_MS = 250.0
LOADED_RATE = 10_000.0
LOADED_BURST = 100
STALL_MS = 1000.0


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile by nearest rank (no interpolation: a value that was measured)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def leg_summary(values: list[float]) -> dict[str, float]:
    """p50, p99 and max in ms (rounded to 0.1 ms, the clock's useful resolution here) and n."""
    if not values:
        return {"n": 0}
    return {"p50_ms": round(statistics.median(values), 1), "p99_ms": round(pct(values, 99), 1),
            "max_ms": round(max(values), 1), "n": len(values)}


def legs(results: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Every leg's summary over the probes that got their SMS (a missed probe has no legs)."""
    got = [r for r in results if "missed" not in r]
    return {leg: leg_summary([r[leg] for r in got if leg in r]) for leg, _ in LEGS}


def stalls(results: list[dict[str, float]], miss_after_s: float) -> tuple[float, int]:
    """The longest a probe waited for its SMS (a miss counts as the whole wait) and how many waited over 1 s.

    Probes run one after the other, so the longest wait is the longest time the path sent no SMS
    it owed.
    """
    waits = [miss_after_s * 1000 if "missed" in r else r["total"] for r in results]
    return (round(max(waits), 1) if waits else 0.0), sum(w > STALL_MS for w in waits)


def target(telemetry_rate: float, burst: int) -> float | None:
    """The issue's p99 target for a run of this kind; None for a run that is neither of its two."""
    if not telemetry_rate and not burst:
        return QUIET_P99_MS
    if telemetry_rate >= LOADED_RATE and burst >= LOADED_BURST:
        return LOADED_P99_MS
    return None


def verdict(doc: dict[str, Any]) -> dict[str, Any]:
    """The targets that apply to ``doc`` and whether it met them."""
    p99 = doc["legs"]["total"].get("p99_ms")
    goal = target(doc["background"]["telemetry_rate_asked"], doc["bursts"]["per_s"])
    met = None if goal is None or p99 is None else p99 <= goal and not doc["probes"]["missed"]
    return {"p99_ms": goal, "p99_met": met, "stall_ms": STALL_MS, "stall_met": doc["stalls_over_1s"] == 0}


def _mib(kb: int) -> str:
    return f"{kb / 1024:.0f}"


def _thousands(x: float) -> str:
    return f"{x:,.0f}"


def background_line(bg: dict[str, Any]) -> str:
    """What ran behind the probes, as counted (not as asked)."""
    parts = [f"{_thousands(bg['stored_per_s'])} msg/s of telemetry stored in InfluxDB during the probes"]
    if bg["telemetry_rate_asked"]:
        n = bg["publishers"]
        parts.append(f"asked {_thousands(bg['telemetry_rate_asked'])}; {n} publisher{'s' if n != 1 else ''} "
                     f"sent {_thousands(bg['published_per_s'])} msg/s, acknowledged by the broker")
    parts.append(f"simulator every {bg['simulator_interval_s']} s" if bg["simulator"] else "no simulator")
    return "; ".join(parts)


def bursts_line(b: dict[str, Any]) -> str:
    if not b["per_s"]:
        return "none"
    return (f"{b['per_s']} `{b['rule']}` alarms within 1 s every {b['every_s']:g} s, recovered {b['hold_s']:g} s "
            f"later: {b['cycles']} bursts, {b['alarms_fired']} alarms fired, {b['floods']} floods "
            f"(slowest burst published in {b['slowest_spread_ms']:.0f} ms)")


def markdown(doc: dict[str, Any]) -> str:
    """The run as Markdown: the legs table, then the figures beside it."""
    p = doc["probes"]
    lines = [f"{p['injections']} storage-room power losses over 21 sites, {p['window_s']:.0f} s of probes; "
             f"{doc['started_utc']}, commit {doc['commit']}"]
    if p["stopped_early"]:
        lines += ["", f"**Stopped after {p['injections']} of {p['asked']} injections: {p['stopped_early']}.**"]
    lines += ["", "| leg | p50 ms | p99 ms | max ms | n |", "|---|---|---|---|---|"]
    for leg, title in LEGS:
        s = doc["legs"][leg]
        if s["n"]:
            lines.append(f"| {title} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {s['max_ms']:.1f} | {s['n']} |")
    lines += ["", "| figure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in figures(doc))]
    return "\n".join(lines)


def figures(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of the second table: the run's conditions and costs."""
    m, cpu, v = doc["machine"], doc["cpu_us_per_telemetry_msg"], doc["target"]
    ratio = doc["p99_over_floor_p99"]
    goal = "no target of the issue for this kind of run" if v["p99_ms"] is None else (
        f"p99 ≤ {v['p99_ms']:.0f} ms {'met' if v['p99_met'] else 'MISSED'}")
    rss = ", ".join(f"{k} {_mib(kb)}" for k, kb in doc["peak_rss_kb"].items())
    sms = ", ".join(f"{n} {k}" for k, n in doc["sms_sent"].items()) or "none"
    return [
        ("background", background_line(doc["background"])),
        ("bursts", bursts_line(doc["bursts"])),
        ("p99 / floor p99", "—" if ratio is None else f"{ratio:.1f} ×"),
        ("longest stall (probe waiting for its SMS)",
         f"{doc['longest_stall_ms']:.0f} ms; {doc['stalls_over_1s']} over 1 s, {doc['probes']['missed']} missed"),
        ("CPU per telemetry message", f"ingest {cpu['ingest']:.0f} µs, rules {cpu['rules']:.0f} µs"),
        ("peak RSS, MiB", rss),
        ("SMS accepted by Kannel from the first probe on", sms),
        ("alarm transitions in the run", ", ".join(f"{n} {sev}" for sev, n in doc["alarm_transitions"].items())
         + f"; {doc['transitions_unsent_at_end']} not yet published at the end"),
        ("load average (1 min)", f"{m['load_average_start'][0]:.2f} at the start, {m['load_average_end'][0]:.2f} "
                                 f"at the end, {m['cores']} cores"),
        ("target", f"{goal}; no stall over 1 s {'met' if v['stall_met'] else 'MISSED'}"),
        ("commit, command", f"`{doc['commit']}`, `{doc['command']}`"),
    ]


__all__ = ["LEGS", "legs", "markdown", "pct", "stalls", "verdict"]
