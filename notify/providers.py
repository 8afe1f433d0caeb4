"""Providers behind one Protocol: Kannel's HTTP ``sendsms`` and Apprise URLs for SMS, and Apprise
for the duty group chats' robots (DingTalk, WeCom).

A provider answers each send with a :class:`Result`: accepted, or not and whether a retry can
help (the gateway is down: yes; it refused our credentials or the number: no). ``check`` is
run at start: a provider that is misconfigured or refuses our credentials stops the start with
one clear line; one that cannot be reached is reported and its messages wait in the outbox.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3

from examwatch import kannel
from examwatch.kannel import DLR_MASK
from examwatch.roster import Roster
from examwatch.settings import NotifySettings
from notify.roster import robot_url

log = logging.getLogger("examwatch.notify.providers")


class ProviderError(Exception):
    """The provider is misconfigured or refuses us: the notifier cannot send through it."""


class ProviderUnavailable(Exception):
    """The provider cannot be reached now; messages wait in the outbox."""


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    detail: str
    retry: bool = True
    degraded: bool = False  # taken, but held by the gateway (e.g. Kannel's SMSC link is down)


class Provider(Protocol):
    name: str

    def check(self) -> None:
        """Raise ProviderError if misconfigured or refused, ProviderUnavailable if unreachable."""
        ...

    def send(self, address: str, text: str, ref: int = 0) -> Result:
        """Hand one text to the gateway for ``address``; ``ref`` is the outbox row (for delivery reports)."""
        ...


class Kannel:
    """Kannel smsbox ``/cgi-bin/sendsms`` over one kept-alive connection, UTF-8 in, UCS-2 (coding 2) out.

    Kannel answers 202 with ``0: Accepted for delivery`` when the SMSC took it, and also 202 with
    ``3: Queued for later delivery`` when its SMSC link is down: the message then waits in
    Kannel's spool, so it counts as sent (not to be sent twice) and the health shows the link.

    With ``dlr_base`` (the API as Kannel reaches it) and ``dlr_key`` (``links.callback_key``) each
    SMS asks for delivery reports: ``dlr-mask=31`` (delivered, failed, buffered, accepted and
    rejected by the SMSC) and ``dlr-url={dlr_base}/sms/dlr?n=<row>&t=%d&k=<key>``, which the API
    records in ``notification.delivery``. Kannel's sendsms answers with no message id, so this
    is how the notifier learns, after a crash, whether the SMS in flight was taken.
    """

    name = "kannel"

    def __init__(self, cfg: NotifySettings, dlr_base: str = "", dlr_key: str = "") -> None:
        if not cfg.kannel_username or not cfg.kannel_password.get_secret_value():
            raise ProviderError("notify.kannel_username and notify.kannel_password must be set for provider kannel")
        url = urllib.parse.urlsplit(cfg.kannel_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ProviderError(f"notify.kannel_url is not an http(s) URL: {cfg.kannel_url!r}")
        self.path = url.path or "/cgi-bin/sendsms"
        self.auth = {"username": cfg.kannel_username, "password": cfg.kannel_password.get_secret_value()}
        self.sender = cfg.kannel_from
        self.pool = urllib3.connection_from_url(
            cfg.kannel_url, maxsize=1, block=True, retries=False,
            timeout=urllib3.Timeout(connect=cfg.send_timeout_s, read=cfg.send_timeout_s))
        self.where = f"kannel at {url.hostname}:{url.port or 80}"
        self.dlr_base, self.dlr_key = dlr_base.rstrip("/"), dlr_key

    def _get(self, fields: dict[str, str]) -> tuple[int, str]:
        try:
            r = self.pool.request("GET", self.path, fields=fields)
        except urllib3.exceptions.HTTPError as exc:
            raise ProviderUnavailable(f"{self.where}: {exc}") from exc
        return r.status, r.data.decode(errors="replace").strip()

    def check(self) -> None:
        # No receiver: Kannel authenticates first (403 on bad credentials), then refuses with 400.
        status, body = self._get(dict(self.auth))
        if status == 403:
            raise ProviderError(f"{self.where} refused notify.kannel_username/password: {body}")
        if status >= 500:
            raise ProviderUnavailable(f"{self.where}: HTTP {status} {body}")

    def dlr_url(self, ref: int) -> str:
        """The ``dlr-url`` for outbox row ``ref`` (Kannel fills in ``%d``, the report's type)."""
        return kannel.dlr_url(self.dlr_base, self.dlr_key, ref)

    def send(self, address: str, text: str, ref: int = 0) -> Result:
        fields = {**self.auth, "to": address, "from": self.sender, "text": text, "charset": "UTF-8", "coding": "2"}
        if self.dlr_base and ref:
            fields.update({"dlr-mask": str(DLR_MASK), "dlr-url": self.dlr_url(ref)})
        try:
            status, body = self._get(fields)
        except ProviderUnavailable as exc:
            return Result(False, str(exc))
        if body.startswith("0:"):
            return Result(True, f"{status} {body}")
        if body.startswith("3:"):
            return Result(True, f"{status} {body}", degraded=True)
        # 403 (credentials) and 400 (a bad number or text) will not heal by retrying; 5xx may.
        return Result(False, f"{status} {body}", retry=status >= 500)


class Apprise:
    """Any Apprise URL with ``{phone}`` where the recipient goes (Twilio, SMPP, SMSEagle, form://…)."""

    name = "apprise"

    def __init__(self, cfg: NotifySettings) -> None:
        import apprise  # noqa: PLC0415 - imported here: only deployments that use it pay its start-up

        self._apprise = apprise
        self.template = cfg.apprise_url.get_secret_value()
        if "{phone}" not in self.template:
            raise ProviderError("notify.apprise_url must be set and contain {phone} for provider apprise")
        if apprise.Apprise.instantiate(self.template.replace("{phone}", "10000000000")) is None:
            scheme = self.template.partition("://")[0]
            raise ProviderError(f"notify.apprise_url: Apprise does not accept this URL (scheme {scheme}://)")
        self._by_phone: dict[str, apprise.Apprise] = {}

    def check(self) -> None:
        """Apprise plugins have no side-effect-free probe; the URL was checked when it was parsed."""

    def send(self, address: str, text: str, ref: int = 0) -> Result:
        phone = address
        client = self._by_phone.get(phone)
        if client is None:
            client = self._by_phone[phone] = self._apprise.Apprise()
            client.add(self.template.replace("{phone}", urllib.parse.quote(phone)))
        with self._apprise.LogCapture(level=logging.WARNING) as logs:  # type: ignore[no-untyped-call]
            ok = bool(client.notify(body=text))
        detail = logs.getvalue().strip().replace("\n", " | ")
        return Result(ok, "apprise: accepted" if ok else f"apprise: {detail or 'failed'}")


class Robots:
    """The duty group chats' robots through Apprise (``dingtalk://``, ``wecombot://``, any Apprise URL).

    The outbox names a robot ``robot:<person id>:<n>``; its URL (which holds the robot's secret)
    is looked up in the roster running now. Apprise's own throttle between requests is turned off:
    the sender keeps each robot under ``robot_rate_per_min`` (DingTalk and WeCom allow 20 a minute).
    """

    name = "robots"

    def __init__(self, roster: Callable[[], Roster]) -> None:
        self._roster = roster
        self._by_url: dict[str, Any] = {}

    def check(self) -> None:
        """Apprise has no side-effect-free probe; each roster URL was checked when the roster was loaded."""

    def send(self, address: str, text: str, ref: int = 0) -> Result:
        url = robot_url(self._roster(), address)
        if url is None:
            return Result(False, f"{address} is no longer in the roster", retry=False)
        import apprise  # noqa: PLC0415 - imported on first use: only deployments with group chats pay its start-up

        client = self._by_url.get(url)
        if client is None:
            client = apprise.Apprise()
            if not client.add(url):
                return Result(False, f"apprise does not accept the URL of {address}", retry=False)
            for server in client:
                server.request_rate_per_sec = 0
            self._by_url[url] = client
        with apprise.LogCapture(level=logging.WARNING) as logs:  # type: ignore[no-untyped-call]
            ok = bool(client.notify(body=text))
        detail = logs.getvalue().strip().replace("\n", " | ")
        return Result(ok, "apprise: accepted" if ok else f"apprise: {detail or 'failed'}")


def make(cfg: NotifySettings, dlr_base: str = "", dlr_key: str = "") -> Provider:
    """The SMS provider named by ``notify.provider``; ProviderError if its settings are incomplete."""
    return Kannel(cfg, dlr_base, dlr_key) if cfg.provider == "kannel" else Apprise(cfg)
