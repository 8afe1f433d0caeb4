"""Progress while a simulation runs: simulated time, messages, rate, lag and memory (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from simulators.stats import Stats, rss_mb


@dataclass
class Reporter:
    """Callbacks for :meth:`simulators.engine.Engine.run` that drive a rich progress display."""

    progress: Progress | None
    task: TaskID | None
    links: int
    t0: float | None = None
    #: what else to say at a simulated moment (a drill: the next fault or timetable edge)
    more: Callable[[float], str] | None = None
    tz: tzinfo | None = None  # show simulated time in this offset (default: the machine's)

    def connected(self, n: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=f"connecting {n}/{self.links}")

    def tick(self, stats: Stats, sim_now: float) -> None:
        if self.progress is None or self.task is None:
            return
        if self.t0 is None:
            self.t0 = sim_now
        at = datetime.fromtimestamp(sim_now, UTC)
        when = (at.astimezone(self.tz) if self.tz else at.astimezone()).strftime("%m-%d %H:%M:%S")
        more = f" | {self.more(sim_now)}" if self.more else ""
        self.progress.update(
            self.task, completed=sim_now - self.t0,
            description=(
                f"sim {when}{more} | {stats.devices} devices | {stats.sent} msgs "
                f"{stats.report_rate:,.0f}/s (nominal {stats.nominal_msg_s:,.0f}) | "
                f"lag p99 ≤ {stats.lag_quantile(0.99):g} s | drop {stats.dropped} | RSS {rss_mb():,.0f} MB"
            ),
        )


@contextmanager
def reporter(links: int, duration_s: float, quiet: bool, more: Callable[[float], str] | None = None,
             tz: tzinfo | None = None) -> Iterator[Reporter]:
    """A progress display on stderr (none when ``quiet``); the bar fills over ``duration_s``."""
    if quiet:
        yield Reporter(None, None, links)
        return
    columns = [TextColumn("{task.description}"), TimeElapsedColumn()]
    if duration_s:
        columns.insert(1, BarColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("starting", total=duration_s or None)
        yield Reporter(progress, task, links, more=more, tz=tz)
