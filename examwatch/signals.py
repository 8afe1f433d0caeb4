"""How every long-running service learns it should stop: SIGTERM (systemd) or SIGINT (Ctrl-C)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from types import FrameType


def stop_on_signals(log: logging.Logger, doing: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT, logging ``signal N: <doing>`` when it comes."""
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        # A handler's exception would surface wherever the main thread happened to be, and
        # writing to stderr from a signal handler can fail (a reentrant call): lose the line instead.
        with contextlib.suppress(RuntimeError, OSError):
            log.info("signal %d: %s", signum, doing)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def reload_on_hangup() -> threading.Event:
    """An event set by SIGHUP: the service re-reads its files at its next turn."""
    reload = threading.Event()
    signal.signal(signal.SIGHUP, lambda _signum, _frame: reload.set())
    return reload
