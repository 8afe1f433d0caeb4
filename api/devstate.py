"""Every device's online state, last seen and clock skew, read from InfluxDB and shared for a moment.

Two statements in one request: the last ``skew_ms`` of each device's telemetry (its time is
"last seen", its value the clock skew) and the last retained ``device_status``. A device is
online when it reported within ``offline_after_s`` and its last status message is not an
``offline`` newer than that report (the broker's last will arrives before the silence shows).
The snapshot is reused for ``status_cache_s`` so that a wall of clients polling /sites costs
InfluxDB one query, and one request at a time refreshes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from examwatch.influx import Influx
from examwatch.kinds import KINDS

log = logging.getLogger("examwatch.api")
_MEASUREMENTS = ",".join(f'"{k}"' for k in sorted(KINDS))
# Measurement names come from the kinds registry, never from a request; times are bound.
QUERY = (
    f'SELECT last("skew_ms") AS "skew_ms" FROM {_MEASUREMENTS} WHERE time > $since GROUP BY "device";'  # noqa: S608
    'SELECT last("online") AS "online" FROM "device_status" WHERE time > $since GROUP BY "device"'
)


@dataclass(frozen=True, slots=True)
class DeviceState:
    last_seen_ns: int | None
    skew_ms: int | None
    status_online: bool | None
    status_ns: int | None
    online: bool


OFFLINE = DeviceState(None, None, None, None, False)


def _by_device(result: dict[str, Any], column: str) -> dict[str, tuple[int, Any]]:
    out: dict[str, tuple[int, Any]] = {}
    for series in result.get("series", []):
        device = series["tags"]["device"]
        t, v = series["values"][0][0], series["values"][0][series["columns"].index(column)]
        if device not in out or out[device][0] < t:
            out[device] = (t, v)
    return out


def combine(telemetry: dict[str, tuple[int, Any]], status: dict[str, tuple[int, Any]], now_ns: int,
            offline_after_s: int) -> dict[str, DeviceState]:
    """Device states from the last telemetry (time, skew) and the last status (time, online) per device."""
    out: dict[str, DeviceState] = {}
    for device in telemetry.keys() | status.keys():
        seen_ns, skew = telemetry.get(device, (None, None))
        status_ns, status_online = status.get(device, (None, None))
        recent = seen_ns is not None and now_ns - seen_ns <= offline_after_s * 1_000_000_000
        said_offline = status_online is False and status_ns is not None and (seen_ns is None or status_ns >= seen_ns)
        out[device] = DeviceState(seen_ns, skew, status_online, status_ns, recent and not said_offline)
    return out


class DeviceStates:
    """The shared snapshot of every device's state, refreshed behind the requests that read it.

    A snapshot older than ``cache_s`` is refreshed by a background thread while requests keep
    reading the previous one, so no request waits for InfluxDB; one older than five times that
    (after a quiet spell) is refreshed before answering, so nobody is shown old news.
    """

    def __init__(self, influx: Influx, offline_after_s: int, lookback_h: int, cache_s: float,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self._influx = influx
        self._offline_after_s = offline_after_s
        self._lookback_ns = lookback_h * 3600 * 1_000_000_000
        self._cache_ns = int(cache_s * 1e9)
        self._clock = clock
        self._lock = threading.Lock()
        self._flag_lock = threading.Lock()
        self._refreshing = False
        self._at_ns = 0
        self._states: dict[str, DeviceState] = {}

    def _load(self) -> None:
        now = self._clock()
        results = self._influx.query(QUERY, {"since": now - self._lookback_ns}, epoch="ns")
        states = combine(_by_device(results[0], "skew_ms"), _by_device(results[1], "online"), now,
                         self._offline_after_s)
        self._states, self._at_ns = states, now

    def _refresh_in_background(self) -> None:
        try:
            with self._lock:
                self._load()
        except Exception:  # keep serving the last snapshot; the next read tries again
            log.warning("device states not refreshed", exc_info=True)
        finally:
            self._refreshing = False

    def snapshot(self) -> dict[str, DeviceState]:
        """Device id → state; devices never heard of are absent (see ``OFFLINE``). Raises InfluxUnavailable."""
        age = self._clock() - self._at_ns
        if age < self._cache_ns and self._at_ns:
            return self._states
        if age < 5 * self._cache_ns and self._at_ns:
            with self._flag_lock:  # not self._lock: a refresh in progress holds that one
                start, self._refreshing = not self._refreshing, True
            if start:
                threading.Thread(target=self._refresh_in_background, daemon=True, name="device-states").start()
            return self._states
        with self._lock:
            if self._clock() - self._at_ns >= self._cache_ns or not self._at_ns:
                self._load()
            return self._states
