"""``python -m bench.peer``: examwatch ingest against a tuned Node-RED flow and the bare relay.

Installs Node-RED 4 and node-red-contrib-influxdb here from npm (first run only), starts
influxd and mosquitto on free loopback ports (data in a temporary directory), then for each
round and each QoS (0, then 1) runs one trial per contender, in an order that rotates every
round, and prints per contender and QoS: msg/s, the ratio to the bare relay (per round, paired),
CPU µs per message of the contender's process, its peak RSS and the messages lost; then the
targets of issue 16, each met or not. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from bench.child import REPO
from bench.peer.rig import CONTENDERS, PeerRig, Trial

DISTRICT = REPO / "config" / "district.yaml"


@dataclass
class Report:
    started: str
    commit: str
    load_average: tuple[float, float, float]
    messages: int
    rounds: int
    inventory: str
    devices: int
    trials: list[Trial] = field(default_factory=list)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def of(self, contender: str, qos: int) -> list[Trial]:
        return [t for t in self.trials if t.contender == contender and t.qos == qos]

    def ratios(self, contender: str, versus: str, qos: int) -> list[float]:
        """``contender``'s rate over ``versus``'s, round by round."""
        mine = {t.round: t.rate for t in self.of(contender, qos)}
        theirs = {t.round: t.rate for t in self.of(versus, qos)}
        return [mine[r] / theirs[r] for r in sorted(mine) if theirs.get(r)]


def _commit() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or "unknown"


def run(rounds: int, messages: int, inventory: Path, publishers: int, window: int, root: Path,
        contenders: tuple[str, ...] = CONTENDERS) -> Report:
    """All trials, nothing printed."""
    rig = PeerRig(root, inventory, publishers, window)
    report = Report(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), _commit(), os.getloadavg(), messages, rounds,
                    inventory.name, len(rig.stack.inventory.devices))
    try:
        for rnd in range(rounds):
            k = rnd % len(contenders)
            order = contenders[k:] + contenders[:k]
            for qos in (0, 1):
                for contender in order:
                    report.trials.append(rig.trial(contender, qos, messages, rnd))
    finally:
        rig.close()
    report.load_after = os.getloadavg()
    return report


def _span(values: list[float], fmt: str) -> str:
    if not values:
        return "—"
    lo, hi, mid = min(values), max(values), statistics.median(values)
    return f"{mid:{fmt}} ({lo:{fmt}}–{hi:{fmt}})" if len(values) > 1 else f"{mid:{fmt}}"


def render(report: Report) -> str:
    """The table (medians, with the range over rounds) and the targets."""
    la, lb = report.load_average, report.load_after
    out = [f"bench.peer {report.started}, commit {report.commit}, load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
           f"→ {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}",
           f"{report.rounds} round(s) × {report.messages} messages per trial, inventory {report.inventory} "
           f"({report.devices} devices)", "",
           "| contender | QoS | msg/s | × bare | CPU µs/msg | peak RSS MiB | lost |",
           "|---|---|---|---|---|---|---|"]
    for qos in (0, 1):
        for c in CONTENDERS:
            ts = report.of(c, qos)
            if not ts:
                continue
            ratio = "1" if c == "bare" else _span(report.ratios(c, "bare", qos), ".2f")
            out.append(f"| {c} | {qos} | {_span([t.rate for t in ts], ',.0f')} | {ratio} | "
                       f"{_span([t.contender_cpu_us for t in ts], '.1f')} | "
                       f"{max(t.peak_rss_kb for t in ts) / 1024:.1f} | {sum(t.lost for t in ts)} |")
    out.append("")
    out += [f"{'ok  ' if ok else 'MISS'} {what}" for ok, what in targets(report)]
    return "\n".join(out)


def targets(report: Report) -> list[tuple[bool, str]]:
    """Issue 16's targets for examwatch, each (met, what): every round must meet each (a ratio only
    when both contenders ran)."""
    rss_limit = 64 if report.devices < 10_000 else 128
    out: list[tuple[bool, str]] = []
    for qos in (0, 1):
        mine = report.of("examwatch", qos)
        if not mine:
            continue
        bare, red = report.ratios("examwatch", "bare", qos), report.ratios("examwatch", "nodered", qos)
        cpu = [t.contender_cpu_us for t in mine]
        rss = max(t.peak_rss_kb for t in mine) / 1024
        lost = sum(t.lost for t in mine)
        if bare:
            out.append((min(bare) >= 0.8, f"QoS {qos}: ≥ 0.8 × bare relay (min {min(bare):.2f})"))
        if red:
            out.append((min(red) >= 1.1, f"QoS {qos}: ≥ 1.1 × Node-RED (min {min(red):.2f})"))
        out += [
            (max(cpu) <= 30, f"QoS {qos}: ≤ 30 µs CPU per message (max {max(cpu):.1f})"),
            (rss <= rss_limit, f"QoS {qos}: peak RSS ≤ {rss_limit} MiB with {report.devices} devices ({rss:.1f})"),
            (lost == 0, f"QoS {qos}: nothing lost ({lost} lost)"),
        ]
    return out


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")


@app.command()
def main(
    rounds: Annotated[int, typer.Option(min=1, help="rounds; each runs every contender at QoS 0 and QoS 1")] = 3,
    messages: Annotated[int, typer.Option(min=100, help="messages per trial")] = 50_000,
    inventory: Annotated[Path, typer.Option(help="inventory the message mix comes from")] = DISTRICT,
    # Two: at QoS 1 one publisher process spends about 60 µs a message and, on one core, would cap
    # every contender at the same rate; the comparison is of the consumers.
    publishers: Annotated[int, typer.Option(min=1, max=64, help="publisher processes")] = 2,
    window: Annotated[int, typer.Option(min=1, max=65_535, help="unacknowledged messages per connection")] = 1000,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write every trial as JSON")] = None,
    only: Annotated[str, typer.Option(help="comma-separated contenders to run (bare, nodered, examwatch)")] = "",
) -> None:
    """examwatch ingest, a tuned Node-RED flow and the bare paho relay, alternating on one broker and InfluxDB."""
    contenders = tuple(c for c in CONTENDERS if not only or c in only.split(","))
    unknown = set(only.split(",")) - set(CONTENDERS) if only else set()
    if unknown or not contenders:
        raise typer.BadParameter(f"--only takes {', '.join(CONTENDERS)}; got {only!r}")
    with tempfile.TemporaryDirectory(prefix="examwatch-peer-") as tmp:
        report = run(rounds, messages, inventory.resolve(), publishers, window, Path(tmp), contenders)
    typer.echo(render(report))
    if json_out is not None:
        json_out.write_text(json.dumps(asdict(report), indent=1, default=str))
    if not all(ok for ok, _ in targets(report)):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
