"""A small client for InfluxDB's v1 HTTP API: line protocol to ``/write``, InfluxQL to ``/query``.

InfluxDB 1.x serves this API; 2.x serves it through its v1 compatibility layer (a DBRP mapping
and a token); 3.x natively. ``influxdb-client`` speaks only ``/api/v2`` and gets 404s from 1.x,
so it is not used. Failures are sorted into what retrying can fix (``InfluxUnavailable``: the
server is down, overloaded, or refusing us) and what it cannot (``InfluxRejected``: the data is
malformed); a partial write (field type conflict) is a success with dropped points counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3

from examwatch.settings import InfluxSettings

_DROPPED = re.compile(rb"dropped=(\d+)")


class InfluxUnavailable(Exception):
    """The write did not happen and may succeed later: keep the data and retry."""


class InfluxRejected(Exception):
    """InfluxDB refused the data itself (unparseable); retrying the same bytes cannot succeed."""


@dataclass(frozen=True)
class WriteResult:
    dropped: int = 0
    detail: str = ""


class Influx:
    """Write and query one database through the v1 API over a kept-alive connection pool."""

    def __init__(self, cfg: InfluxSettings, pool_size: int = 2) -> None:
        self.cfg = cfg
        self._http = urllib3.PoolManager(
            num_pools=2, maxsize=pool_size, retries=False, timeout=urllib3.Timeout(total=cfg.timeout_s)
        )
        self._base = cfg.url.rstrip("/")
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        token = cfg.token.get_secret_value()
        if token:
            self._headers["Authorization"] = f"Token {token}"
        self._auth: dict[str, str] = {}
        if cfg.username:
            self._auth = {"u": cfg.username, "p": cfg.password.get_secret_value()}
        params = {"db": cfg.database, "precision": "ns", **self._auth}
        if cfg.retention_policy:
            params["rp"] = cfg.retention_policy
        self._write_url = f"{self._base}/write?{urlencode(params)}"

    def _request(
        self, method: str, url: str, body: bytes | None = None, form: bool = False
    ) -> urllib3.BaseHTTPResponse:
        headers = self._headers
        if form:
            headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        try:
            return self._http.request(method, url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise InfluxUnavailable(f"{self._base}: {exc}") from exc

    def write(self, body: bytes) -> WriteResult:
        """POST line protocol (nanosecond timestamps). Raises InfluxUnavailable or InfluxRejected.

        A missing database is created (when settings allow) and the write tried once more, so an
        InfluxDB wiped or replaced during an outage is repopulated from the spool.
        """
        resp = self._request("POST", self._write_url, body=body)
        if resp.status == 404 and b"database not found" in resp.data and self.cfg.create_database:
            self.create_database()
            resp = self._request("POST", self._write_url, body=body)
        if resp.status == 204:
            return WriteResult()
        text = resp.data[:500]
        if resp.status == 400 and b"partial write" in text:
            m = _DROPPED.search(text)
            return WriteResult(int(m.group(1)) if m else 0, text.decode(errors="replace"))
        if resp.status in (400, 413):
            raise InfluxRejected(f"HTTP {resp.status}: {text.decode(errors='replace')}")
        raise InfluxUnavailable(f"HTTP {resp.status}: {text.decode(errors='replace')}")

    def query(self, q: str, params: dict[str, Any] | None = None, epoch: str = "ms") -> list[dict[str, Any]]:
        """Run InfluxQL; ``params`` are bound server-side (``$name``), never pasted into ``q``.

        Returns InfluxDB's ``results`` list. Raises InfluxUnavailable, or InfluxRejected when
        the query is wrong.
        """
        fields: dict[str, str] = {"db": self.cfg.database, "q": q, "epoch": epoch, **self._auth}
        if params:
            fields["params"] = json.dumps(params)
        resp = self._request("POST", f"{self._base}/query", body=urlencode(fields).encode(), form=True)
        if resp.status >= 500 or resp.status in (401, 403, 404):
            raise InfluxUnavailable(f"HTTP {resp.status}: {resp.data[:300].decode(errors='replace')}")
        body = json.loads(resp.data)
        if resp.status != 200 or "error" in body:
            raise InfluxRejected(str(body.get("error", body)))
        results: list[dict[str, Any]] = body.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxRejected(str(result["error"]))
        return results

    def rows(self, q: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows of a single-statement query, each a dict of column → value (tags included)."""
        out: list[dict[str, Any]] = []
        for series in self.query(q, params)[0].get("series", []):
            tags = series.get("tags", {})
            out += [{**tags, **dict(zip(series["columns"], v, strict=True))} for v in series["values"]]
        return out

    def create_database(self) -> None:
        self.query(f'CREATE DATABASE "{self.cfg.database}"')

    def ping(self) -> bool:
        try:
            return self._request("GET", f"{self._base}/ping").status == 204
        except InfluxUnavailable:
            return False
