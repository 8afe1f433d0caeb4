"""SMS providers behind one Protocol: Kannel's HTTP ``sendsms``, and Apprise URLs for the rest.

A provider answers each send with a :class:`Result`: accepted, or not and whether a retry can
help (the gateway is down: yes; it refused our credentials or the number: no). ``check`` is
run at start: a provider that is misconfigured or refuses our credentials stops the start with
one clear line; one that cannot be reached is reported and its messages wait in the outbox.
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass
from typing import Protocol

import urllib3

from examwatch.settings import NotifySettings

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

    def send(self, phone: str, text: str) -> Result:
        """Hand one text to the gateway for ``phone``."""
        ...


class Kannel:
    """Kannel smsbox ``/cgi-bin/sendsms`` over one kept-alive connection, UTF-8 in, UCS-2 (coding 2) out.

    Kannel answers 202 with ``0: Accepted for delivery`` when the SMSC took it, and also 202 with
    ``3: Queued for later delivery`` when its SMSC link is down: the message then waits in
    Kannel's spool, so it counts as sent (not to be sent twice) and the health shows the link.
    """

    name = "kannel"

    def __init__(self, cfg: NotifySettings) -> None:
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

    def send(self, phone: str, text: str) -> Result:
        try:
            status, body = self._get({**self.auth, "to": phone, "from": self.sender, "text": text,
                                      "charset": "UTF-8", "coding": "2"})
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

    def send(self, phone: str, text: str) -> Result:
        client = self._by_phone.get(phone)
        if client is None:
            client = self._by_phone[phone] = self._apprise.Apprise()
            client.add(self.template.replace("{phone}", urllib.parse.quote(phone)))
        with self._apprise.LogCapture(level=logging.WARNING) as logs:  # type: ignore[no-untyped-call]
            ok = bool(client.notify(body=text))
        detail = logs.getvalue().strip().replace("\n", " | ")
        return Result(ok, "apprise: accepted" if ok else f"apprise: {detail or 'failed'}")


def make(cfg: NotifySettings) -> Provider:
    """The provider named by ``notify.provider``; ProviderError if its settings are incomplete."""
    return Kannel(cfg) if cfg.provider == "kannel" else Apprise(cfg)
