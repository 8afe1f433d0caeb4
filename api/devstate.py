"""Every device's online state, last seen and clock skew, read from InfluxDB and shared for a moment.

Per site, two statements in one request: the last ``skew_ms`` of each device's telemetry (its
time is "last seen", its value the clock skew) and the last ``device_status``. A device is
online when its last report was received (device time + skew) within ``offline_after_s`` and
its last status message is not an ``offline`` newer than that report (the broker's last will
arrives before the silence shows). The snapshot is reused for ``status_cache_s`` so that a
wall of clients polling /sites costs InfluxDB one refresh, not one per request.

Why per site: one statement over a district's 2,700 devices keeps InfluxDB busy on every core
for ~70 ms, and the API's requests wait that long for a core on a small machine; 21 short
statements, 20 ms apart, leave room for the requests (bench.api: p99 from 160–500 ms to under 50).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from examwatch import liveness
from examwatch.influx import Influx
from examwatch.kinds import KINDS

log = logging.getLogger("examwatch.api")
_MEASUREMENTS = ",".join(f'"{k}"' for k in sorted(KINDS))
# Measurement names come from the kinds registry, never from a request; times are bound.
QUERY = (
    f'SELECT last("skew_ms") AS "skew_ms" FROM {_MEASUREMENTS} '  # noqa: S608
    'WHERE "site" = $site AND time > $since GROUP BY "device";'
    'SELECT last("online") AS "online" FROM "device_status" WHERE "site" = $site AND time > $since GROUP BY "device"'
)
PACE_S = 0.02  # between sites in a background refresh


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
            offline_after_s: float, timeouts: Mapping[str, float] | None = None) -> dict[str, DeviceState]:
    """Device states from the last telemetry (time, skew) and the last status (time, online) per device.

    Online is :func:`examwatch.liveness.reporting` with the device's absence timeout from the rules
    (``timeouts``), or ``offline_after_s`` for a device no absence rule watches."""
    out: dict[str, DeviceState] = {}
    timeouts = timeouts or {}
    for device in telemetry.keys() | status.keys():
        seen_ns, skew = telemetry.get(device, (None, None))
        status_ns, status_online = status.get(device, (None, None))
        received_s = None if seen_ns is None else (seen_ns + int(skew or 0) * 1_000_000) / 1e9
        said_offline = status_online is False and status_ns is not None and (seen_ns is None or status_ns >= seen_ns)
        # Never heard within the lookback: offline (the API was not listening from a start of its own).
        online = liveness.reporting(received_s, said_offline, timeouts.get(device, offline_after_s), now_ns / 1e9,
                                    listening_since_s=-math.inf)
        out[device] = DeviceState(seen_ns, skew, status_online, status_ns, online)
    return out


class DeviceStates:
    """The shared snapshot of every device's state, refreshed behind the requests that read it.

    A snapshot older than ``cache_s`` is refreshed by a background thread while requests keep
    reading the previous one, so no request waits for InfluxDB; one older than five times that
    (after a quiet spell) is refreshed before answering, so nobody is shown old news.
    """

    def __init__(self, influx: Influx, sites: Callable[[], list[str]], offline_after_s: int, lookback_h: int,
                 cache_s: float, clock: Callable[[], int] = time.time_ns,
                 timeouts: Callable[[], Mapping[str, float]] = dict) -> None:
        self._influx = influx
        self._sites = sites
        self._offline_after_s = offline_after_s
        self._lookback_ns = lookback_h * 3600 * 1_000_000_000
        self._cache_ns = int(cache_s * 1e9)
        self._clock = clock
        self._timeouts = timeouts
        self._lock = threading.Lock()
        self._flag_lock = threading.Lock()
        self._refreshing = False
        self._at_ns = 0
        self._states: dict[str, DeviceState] = {}

    def _load(self, pace_s: float = 0.0) -> None:
        now = self._clock()
        telemetry: dict[str, tuple[int, Any]] = {}
        status: dict[str, tuple[int, Any]] = {}
        for i, site in enumerate(self._sites()):
            if pace_s and i:
                time.sleep(pace_s)
            results = self._influx.query(QUERY, {"site": site, "since": now - self._lookback_ns}, epoch="ns")
            telemetry.update(_by_device(results[0], "skew_ms"))
            status.update(_by_device(results[1], "online"))
        self._states, self._at_ns = combine(telemetry, status, now, self._offline_after_s, self._timeouts()), now

    def _refresh_in_background(self) -> None:
        try:
            with self._lock:
                self._load(PACE_S)
        except Exception:  # keep serving the last snapshot; the next read tries again
            log.warning("device states not refreshed", exc_info=True)
        finally:
            self._refreshing = False

    def ready(self) -> bool:
        """True when ``snapshot()`` answers without waiting for InfluxDB."""
        return bool(self._at_ns) and self._clock() - self._at_ns < 5 * self._cache_ns

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
