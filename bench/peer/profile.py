"""``python -m bench.peer.profile``: where ingest spends its CPU, by py-spy, during one bench.peer trial.

Runs one examwatch trial of ``bench.peer`` (QoS 1, one publisher, the district mix) with py-spy
sampling ingest's thread that holds the GIL (``--gil``: CPU, not waiting), and prints the share of
samples per thread and per function, inclusive and self. ``--rev REV`` profiles the ingest of an
earlier commit instead (its tree taken with ``git archive``, run with this checkout's venv), for
before and after. py-spy is not a project dependency: ``.venv/bin/pip install py-spy``.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

import harness.stack
from bench.child import REPO
from bench.peer.rig import PeerRig


def summary(raw: Path, top: int) -> str:
    """Shares of a py-spy ``-f raw`` profile: threads, functions inclusive, functions self."""
    total = 0
    threads: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        count = int(n)
        total += count
        frames = stack.split(";")
        threads[re.sub(r"thread \(\d+\): ", "", frames[0])] += count
        names = [re.sub(r" \(.*?\)$", "", f) for f in frames[1:]]
        own[names[-1] if names else frames[0]] += count
        for name in set(names):
            inclusive[name] += count
    shares = ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in threads.most_common())
    out = [f"{total} samples", f"threads: {shares}"]
    out += ["inclusive:"] + [f"  {100 * v / total:5.1f} %  {k}" for k, v in inclusive.most_common(top)]
    out += ["self:"] + [f"  {100 * v / total:5.1f} %  {k}" for k, v in own.most_common(top)]
    return "\n".join(out)


class _Profiled(PeerRig):
    def __init__(self, *args: Any, out: Path, rate: int, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.out, self.rate = out, rate
        self.spy: subprocess.Popen[bytes] | None = None

    def _start(self, contender: str, qos: int, messages: int) -> tuple[Any, dict[str, int]]:
        handle, pids = super()._start(contender, qos, messages)
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.spy = subprocess.Popen([spy, "record", "-p", str(pids[contender]), "-f", "raw", "-r", str(self.rate),
                                     "--threads", "--gil", "-o", str(self.out)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches; a fixed settling time, not a synchronisation
        return handle, pids

    def _stop(self, contender: str, handle: Any) -> None:
        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)
            self.spy.wait(60)
        super()._stop(contender, handle)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="py-spy's raw output")] = Path("ingest-profile.txt"),
    rev: Annotated[str, typer.Option(help="profile the ingest of this commit instead")] = "",
    messages: Annotated[int, typer.Option(min=1000)] = 50_000,
    rate: Annotated[int, typer.Option(help="samples per second")] = 1000,
    top: Annotated[int, typer.Option(help="functions listed")] = 20,
) -> None:
    """Profile ingest during one QoS 1 trial and print where its CPU goes."""
    with tempfile.TemporaryDirectory(prefix="examwatch-profile-") as tmp:
        if rev:
            old = Path(tmp) / "tree"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
            launch = f"import sys; sys.path.insert(0, {str(old)!r}); from examwatch.cli import main; main()"

            class _Old(harness.stack.IngestProcess):
                def command(self) -> list[str]:
                    return [sys.executable, "-c", launch, "ingest", "--config", str(self.config),
                            "--worker", self.worker]

            harness.stack.IngestProcess = _Old  # type: ignore[misc]
        rig = _Profiled(Path(tmp) / "rig", REPO / "config" / "district.yaml", 1, 1000, out=out.resolve(), rate=rate)
        try:
            t = rig.trial("examwatch", 1, messages, 0)
        finally:
            rig.close()
    typer.echo(f"ingest{' at ' + rev if rev else ''}: {t.rate:,.0f} msg/s, {t.contender_cpu_us:.1f} µs/msg CPU, "
               f"peak RSS {t.peak_rss_kb / 1024:.1f} MiB, {t.arrived} of {t.messages} points")
    typer.echo(summary(out, top))


if __name__ == "__main__":
    app()
