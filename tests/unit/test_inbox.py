from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from examwatch.inbox import Inbox


def test_takes_in_order_at_most_the_batch() -> None:
    inbox: Inbox[int] = Inbox()
    producer = threading.Thread(target=lambda: [inbox.put(i) for i in range(7)])
    producer.start()
    producer.join()
    assert inbox.take(0, 5) == [0, 1, 2, 3, 4]
    assert inbox.take(0, 5) == [5, 6]
    assert inbox.take(0, 5) == []


def test_a_put_from_another_thread_ends_the_wait() -> None:
    inbox: Inbox[str] = Inbox()
    started = time.monotonic()
    threading.Thread(target=inbox.put, args=("hello",)).start()
    assert inbox.take(30, 10) == ["hello"]
    assert time.monotonic() - started < 30


@pytest.fixture
def hangup_storm() -> Iterator[None]:
    """SIGHUP sent to this process every 0.3 ms, handled by a Python handler (as SIGHUP reloads
    are in the services) until the test ends."""
    previous = signal.signal(signal.SIGHUP, lambda _signum, _frame: None)
    done = threading.Event()

    def storm() -> None:
        while not done.is_set():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.0003)

    thread = threading.Thread(target=storm)
    thread.start()
    yield
    done.set()
    thread.join()
    signal.signal(signal.SIGHUP, previous)


def test_signals_do_not_turn_a_timed_wait_into_a_wait_for_the_next_message(hangup_storm: None) -> None:
    # queue.SimpleQueue.get(timeout=0.02) under this storm blocks until the next put: the rescue
    # below would be what ends it, after 10 s.
    inbox: Inbox[str] = Inbox()
    finished = threading.Event()

    def rescue() -> None:
        if not finished.wait(10):
            inbox.put("rescue")

    threading.Thread(target=rescue, daemon=True).start()
    worst = 0.0
    until = time.monotonic() + 2
    while time.monotonic() < until:
        started = time.monotonic()
        got = inbox.take(0.02, 10)
        worst = max(worst, time.monotonic() - started)
        assert got == [], "the wait was ended by the rescue, not by its own timeout"
    finished.set()
    assert worst < 5
