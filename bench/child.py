"""Benchmark processes driven over pipes: ``python -m MODULE ROLE``, coordinated on stdin/stdout.

multiprocessing's Queue and Event need POSIX semaphores, that is a writable /dev/shm, which a
non-root user in a fresh chroot or container may not have. Pipes need nothing of the kind:

- parent → child's stdin: the spec (one JSON line), then ``go``; end of file means stop;
- child's stdout → parent: ``ready`` once connected and prepared, then the result (one JSON line).

The child's stderr is the parent's, so a child's traceback shows where the benchmark runs.
A child is a fresh interpreter (as multiprocessing's ``spawn``), so it shares no GIL, threads
or sockets with the measured process.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

#: The repository root: ``bench`` (and ``tests``, which the rig uses) import from there.
REPO = Path(__file__).resolve().parent.parent
READY = "ready"
GO = "go"


def _send(stream: IO[str], line: str) -> None:
    stream.write(line + "\n")
    stream.flush()


class Control:
    """The child's side: ``spec`` from stdin, ``ready()``, ``wait_go()``, ``stop`` and ``report()``."""

    def __init__(self) -> None:
        # The protocol has stdout to itself: whatever else is printed (fd 1) goes to stderr.
        self._out = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        self.spec: dict[str, Any] = json.loads(sys.stdin.readline())
        self._go = threading.Event()
        self._went = False
        #: Set when the parent closes stdin: it has its result or gave up.
        self.stop = threading.Event()
        threading.Thread(target=self._read, name="bench-control", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            if line.strip() == GO:
                self._went = True
                self._go.set()
        self.stop.set()
        self._go.set()

    def ready(self) -> None:
        """Tell the parent this process is prepared and waits for ``go``."""
        _send(self._out, READY)

    def wait_go(self) -> None:
        """Block until the parent says ``go``; exit quietly if it stops this process first."""
        self._go.wait()
        if not self._went:
            raise SystemExit(0)

    def report(self, result: Any) -> None:
        """Send ``result`` (JSON-serialisable) to the parent."""
        _send(self._out, json.dumps(result, default=str))


class Child:
    """The parent's side of one ``python -m MODULE ROLE`` process; as a context manager it reaps it."""

    def __init__(self, what: str, module: str, role: str, spec: dict[str, Any]) -> None:
        self.what = what
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", module, role], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": path})
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self._stdin = self.proc.stdin
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._collect, args=(self.proc.stdout,), name=f"bench-{role}", daemon=True).start()
        _send(self._stdin, json.dumps(spec, default=str))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _collect(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _line(self, timeout: float, awaited: str) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.what}: no {awaited} within {timeout:.0f} s") from None
        if line is None:
            raise RuntimeError(f"{self.what} exited with {self.proc.wait()} before its {awaited} "
                               "(its traceback is on stderr)")
        return line

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the child is prepared; fail at once if it exits first."""
        line = self._line(timeout, "ready line")
        if line != READY:
            raise RuntimeError(f"{self.what}: expected {READY!r}, got {line!r}")

    def go(self) -> None:
        """Let the child start."""
        _send(self._stdin, GO)

    def result(self, timeout: float = 600.0) -> dict[str, Any]:
        """The child's result, as sent by ``Control.report``."""
        doc: dict[str, Any] = json.loads(self._line(timeout, "result"))
        return doc

    def close(self, timeout: float = 30.0) -> None:
        """Tell the child to stop (end of its stdin), wait up to ``timeout`` for it, then kill it."""
        with contextlib.suppress(OSError):  # the child may be gone already
            self._stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
