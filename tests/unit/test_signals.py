from __future__ import annotations

import logging
import signal
from collections.abc import Iterator

import pytest

from examwatch.signals import stop_on_signals


class _Broken(logging.Handler):
    """A handler that fails as a write to stderr interrupted by the very signal would."""

    def emit(self, record: logging.LogRecord) -> None:
        raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")


@pytest.fixture
def broken_log() -> Iterator[logging.Logger]:
    saved = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    log = logging.getLogger("examwatch.test.signals")
    handler = _Broken()
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    yield log
    log.removeHandler(handler)
    signal.signal(signal.SIGTERM, saved[0])
    signal.signal(signal.SIGINT, saved[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_stop_is_set_and_nothing_raised_when_its_log_line_fails(broken_log: logging.Logger, sig: signal.Signals) -> None:
    stop = stop_on_signals(broken_log, "stopping")
    assert not stop.is_set()
    signal.raise_signal(sig)  # the handler's failure to log does not surface here
    assert stop.is_set()
