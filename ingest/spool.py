"""The on-disk spool: batches kept durably while InfluxDB cannot take them, replayed in order.

One file per batch (line protocol), written to a temporary name, fsynced and renamed, so a crash
leaves either the whole batch or nothing. Names are zero-padded sequence numbers: sorting them
is replay order. Batches InfluxDB refuses as malformed go to ``dead/`` for a person to look at.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dead_dir = directory / "dead"
        self.dead_dir.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.tmp"):
            stale.unlink()  # a write that crashed before its rename never counted as durable
        self._segments = sorted(directory.glob("*.lp"))
        self._next = int(self._segments[-1].stem) + 1 if self._segments else 0

    def __len__(self) -> int:
        return len(self._segments)

    def _write(self, directory: Path, name: str, body: bytes) -> Path:
        tmp = directory / f"{name}.tmp"
        with tmp.open("wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        final = directory / f"{name}.lp"
        tmp.replace(final)
        _fsync_dir(directory)
        return final

    def put(self, body: bytes) -> None:
        """Append a batch durably: it is on disk when this returns."""
        self._segments.append(self._write(self.dir, f"{self._next:016d}", body))
        self._next += 1

    def oldest(self) -> tuple[Path, bytes] | None:
        if not self._segments:
            return None
        path = self._segments[0]
        return path, path.read_bytes()

    def remove(self, path: Path) -> None:
        """Forget a replayed batch (it is in InfluxDB now)."""
        self._segments.remove(path)
        path.unlink()

    def bury(self, body: bytes, path: Path | None = None) -> Path:
        """Keep a batch InfluxDB will never accept in ``dead/``, out of the replay queue."""
        name = path.stem if path is not None else f"direct-{time.time_ns()}"
        dead = self._write(self.dead_dir, name, body)
        if path is not None:
            self.remove(path)
        return dead
