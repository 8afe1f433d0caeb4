"""Kannel's configuration, generated: the SMS gateway examwatch texts through and hears replies from.

Two generated files: ``kannel.conf`` for bearerbox and the sending smsbox, and
``kannel-inbound.conf`` for the receiving smsbox. They differ only in their ``smsbox`` group.

- ``core``: admin and smsbox interfaces on loopback only, a spool store;
- the SMSC connections: for the demo and the tests, Kannel's fake SMSC for texts out (``fake``),
  and a second fake connection (``phones``) through which replies come in and nothing goes
  out; in production, the operator's own ``smsc`` groups, pulled in with ``include``;
- two smsboxes. The *sending* one (``kannel.conf``) serves ``sendsms`` to the notifier and
  nothing else. The *receiving* one (``kannel-inbound.conf``, ``smsbox-id`` ``inbound``, no
  HTTP port) gets everything that comes in, replies and delivery reports, by a ``smsbox-route``
  on every SMSC id. Why two: Kannel never sets TCP_NODELAY on the bearerbox–smsbox link, so on
  one shared link each delivery report (and smsbox's acknowledgement of it) held the next
  ``sendsms`` answer back until Linux's delayed ACK fired, about 40 ms per SMS (measured:
  p50 38 ms with delivery reports against 1.7 ms without; with the receiving box, 1.8 ms).
- ``sendsms-user`` for the notifier, and one ``sms-service`` that hands every received SMS to the
  API (``POST /sms/reply``). The API's answer is the reply SMS (one UCS-2 segment, ≤ 70
  characters); an empty answer sends nothing, which is how numbers outside the roster are
  answered. Both boxes carry it, so an SMS that reaches the sending box anyway is not lost.

The callbacks Kannel makes to the API carry ``k=<examwatch.links.callback_key(secret)>``:

- replies: ``POST {api}/sms/reply?k=KEY&from=%p&to=%P&id=%I&smsc=%i``, the text in the body
  (``Content-Type`` names its charset: UTF-8, or UTF-16BE for a UCS-2 SMS that ``mo-recode``
  could not convert). ``id`` is Kannel's id of the received SMS: a retried call is answered
  again, not obeyed twice.
- delivery reports: ``GET {api}/sms/dlr?n=<notification id>&t=%d&k=KEY``, the ``dlr-url`` that
  the notifier puts on each SMS it sends (:func:`dlr_url`), with ``dlr-mask`` 31.

A call the API does not answer with 200 is retried ``http-request-retry`` times, ``http-queue-delay``
seconds apart (Kannel's defaults are no retry and 10 s); after the last, Kannel sends the phone
its ``reply-couldnotfetch`` text. Kannel's own texts are sent 7-bit, so they are plain ASCII.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from examwatch.links import callback_key
from examwatch.settings import Settings

#: the SMSC id of the connection replies come in on (demo and tests)
PHONES_SMSC = "phones"
#: the SMSC id of the fake connection texts go out on (demo and tests)
FAKE_SMSC = "fake"
#: what Kannel answers a phone when the API could not be reached after every retry
COULD_NOT_FETCH = "examwatch: reply not processed, please send it again"
REPLY_PATH = "/sms/reply"
DLR_PATH = "/sms/dlr"
#: the ``smsbox-id`` of the receiving smsbox (replies and delivery reports are routed to it)
INBOUND_BOX = "inbound"
INBOUND_CONF = "kannel-inbound.conf"
#: DLR types Kannel reports (dlr-mask bits): delivered, failed, buffered, SMSC accepted, SMSC rejected
DLR_MASK = 31


class KannelConfigError(ValueError):
    """The settings cannot make a working Kannel configuration (the message names the field)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything the generated configuration needs; :func:`layout` builds it from the settings."""

    api_url: str  # the API as Kannel reaches it, without a trailing slash
    key: str  # links.callback_key(secret)
    username: str  # sendsms-user
    password: str
    admin_password: str
    sendsms_port: int
    admin_port: int
    box_port: int
    spool_dir: Path
    log_dir: Path
    fake_smsc_port: int | None = None  # demo/tests: the fake SMSC that receives every text sent
    phones_port: int | None = None  # demo/tests: the fake SMSC that replies come in on
    smsc_include: Path | None = None  # production: a file with the operator's `group = smsc`
    smsc_ids: tuple[str, ...] = ()  # the include's SMSC ids: what comes in on them goes to the receiving box
    http_retries: int = 3
    http_retry_delay_s: int = 2


def callback_base(settings: Settings) -> str:
    """The API's address as Kannel (on this machine, unless ``api.callback_url`` says otherwise) calls it."""
    if settings.api.callback_url:
        return settings.api.callback_url.rstrip("/")
    host = settings.api.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard listener is reached on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api.port}"


def reply_url(api_url: str, key: str) -> str:
    """The sms-service's ``post-url``: Kannel fills in %p (the phone), %P (our number), %I (its id
    of the SMS) and %i (the SMSC it came from)."""
    return f"{api_url}{REPLY_PATH}?k={key}&from=%p&to=%P&id=%I&smsc=%i"


def dlr_url(api_url: str, key: str, notification_id: int) -> str:
    """The ``dlr-url`` for notification ``notification_id`` (Kannel fills in %d, the report type).

    Pass it to sendsms URL-encoded (``dlr-url=…``) with ``dlr-mask=31``."""
    return f"{api_url}{DLR_PATH}?n={notification_id}&t=%d&k={key}"


def admin_password(secret: str) -> str:
    """Kannel's admin password, derived from the master secret (the admin interface is loopback-only)."""
    return hmac.new(secret.encode(), b"examwatch:kannel-admin", hashlib.sha256).hexdigest()[:24]


def layout(settings: Settings, *, spool_dir: Path, log_dir: Path, admin_port: int | None = None,
           box_port: int | None = None, fake_smsc_port: int | None = None, phones_port: int | None = None,
           smsc_include: Path | None = None) -> Layout:
    """The layout for ``settings``: sendsms on ``notify.kannel_url``'s port, the admin and box ports
    next to it unless given. Raises KannelConfigError naming the setting at fault."""
    url = urllib.parse.urlsplit(settings.notify.kannel_url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1") or url.port is None:
        raise KannelConfigError(f"notify.kannel_url: {settings.notify.kannel_url!r} must name a loopback "
                                "host and a port (smsbox listens on loopback only)")
    if not settings.notify.kannel_username or not settings.notify.kannel_password.get_secret_value():
        raise KannelConfigError("notify.kannel_username and notify.kannel_password must be set "
                                "(they become Kannel's sendsms-user)")
    if (fake_smsc_port is None) == (smsc_include is None):
        raise KannelConfigError("name either the fake SMSC's port (demo, tests) or a file with your SMSC "
                                "groups (production), not both and not neither")
    secret = settings.secret.get_secret_value()
    return Layout(
        smsc_ids=smsc_ids(smsc_include) if smsc_include is not None else (),
        api_url=callback_base(settings), key=callback_key(secret), username=settings.notify.kannel_username,
        password=settings.notify.kannel_password.get_secret_value(), admin_password=admin_password(secret),
        sendsms_port=url.port, admin_port=admin_port or url.port + 1, box_port=box_port or url.port + 2,
        spool_dir=spool_dir, log_dir=log_dir, fake_smsc_port=fake_smsc_port, phones_port=phones_port,
        smsc_include=smsc_include,
    )


def smsc_ids(include: Path) -> tuple[str, ...]:
    """The ``smsc-id`` of every ``group = smsc`` in the operator's file; KannelConfigError, naming the
    file and line, for a group without one (received SMS are routed to the receiving box by it)."""
    try:
        lines = include.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KannelConfigError(f"--smsc-include {include}: cannot be read ({exc})") from exc
    groups: list[tuple[int, str, str]] = []  # (line, group name, its smsc-id or "")
    for n, raw in enumerate(lines, 1):
        key, sep, value = raw.partition("=")
        if not sep or raw.lstrip().startswith("#"):
            continue
        key, value = key.strip().lower(), value.strip().strip('"')
        if key == "group":
            groups.append((n, value.lower(), ""))
        elif key == "smsc-id" and groups:
            groups[-1] = (*groups[-1][:2], value)
    ids: list[str] = []
    for n, name, smsc_id in groups:
        if name != "smsc":
            continue
        if not smsc_id:
            raise KannelConfigError(f"{include}: line {n}: this `group = smsc` has no smsc-id; give "
                                    "each SMSC one (replies and delivery reports are routed by it)")
        ids.append(smsc_id)
    if not ids:
        raise KannelConfigError(f"{include}: no `group = smsc` found; it must hold your SMSC connection(s)")
    return tuple(ids)


def _group(name: str, **values: object) -> str:
    lines = [f"group = {name}"]
    for key, value in values.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if any(c in text for c in ' "#&%?;'):
            text = '"' + text.replace('"', '\\"') + '"'
        lines.append(f"{key.replace('_', '-')} = {text}")
    return "\n".join(lines) + "\n"


def inbound_ids(lay: Layout) -> tuple[str, ...]:
    """The SMSC ids whose received SMS and delivery reports go to the receiving box."""
    ids = [FAKE_SMSC] if lay.fake_smsc_port is not None else []
    ids += [PHONES_SMSC] if lay.phones_port is not None else []
    return (*ids, *lay.smsc_ids)


def config_text(lay: Layout, *, inbound: bool = False) -> str:
    """``kannel.conf`` (bearerbox and the sending smsbox) for ``lay``, or with ``inbound`` the
    receiving smsbox's ``kannel-inbound.conf``."""
    # The two boxes differ in who they are: the receiving one has an id and no sendsms port.
    if inbound:
        own: dict[str, object] = {"smsbox_id": INBOUND_BOX}
        log = "smsbox-inbound.log"
        who = "the receiving smsbox reads it (bearerbox and the sending smsbox read kannel.conf)"
    else:
        own = {"sendsms_port": lay.sendsms_port, "sendsms_interface": "127.0.0.1"}
        log = "smsbox.log"
        who = f"bearerbox and the sending smsbox read it (the receiving smsbox reads {INBOUND_CONF})"
    box = _group("smsbox", **own, bearerbox_host="127.0.0.1", bearerbox_port=lay.box_port, mo_recode=True,
                 http_request_retry=lay.http_retries, http_queue_delay=lay.http_retry_delay_s,
                 reply_couldnotfetch=COULD_NOT_FETCH, reply_requestfailed=COULD_NOT_FETCH,
                 log_file=lay.log_dir / log, log_level=1)
    parts = [
        "# Generated by `examwatch kannel-config`; change the settings, not this file.\n"
        f"# {who}. Every interface but the SMSC links is loopback-only.\n",
        _group("core", admin_port=lay.admin_port, admin_interface="127.0.0.1", admin_password=lay.admin_password,
               admin_allow_ip="127.0.0.1", smsbox_port=lay.box_port, smsbox_interface="127.0.0.1",
               box_allow_ip="127.0.0.1", store_type="spool", store_location=lay.spool_dir,
               log_file=lay.log_dir / "bearerbox.log", log_level=1),
    ]
    if lay.fake_smsc_port is not None:
        parts.append("# The demo's and the tests' SMSC: Kannel's fakesmsc connects here and prints every text.\n"
                     + _group("smsc", smsc="fake", smsc_id=FAKE_SMSC, host="127.0.0.1", port=lay.fake_smsc_port,
                              connect_allow_ip="127.0.0.1"))
    if lay.phones_port is not None:
        # Only replies come in here: `allowed-smsc-id` names an id no message carries, so nothing
        # is routed out this way (a reply to a reply goes out through the other SMSC).
        parts.append("# Replies from phones come in here (the fakesmsc line protocol: <from> <to> text <message>);\n"
                     "# nothing is sent out on it.\n"
                     + _group("smsc", smsc="fake", smsc_id=PHONES_SMSC, host="127.0.0.1", port=lay.phones_port,
                              connect_allow_ip="127.0.0.1", allowed_smsc_id="examwatch-receive-only"))
    if lay.smsc_include is not None:
        parts.append(f'# The operator\'s SMSC connection(s).\ninclude = "{lay.smsc_include}"\n')
    parts += [
        "# Everything that comes in (replies, delivery reports) goes to the receiving smsbox, so that the\n"
        "# sending smsbox's link carries sendsms alone (Kannel's box links have no TCP_NODELAY).\n"
        + _group("smsbox-route", smsbox_id=INBOUND_BOX, smsc_id=";".join(inbound_ids(lay))),
        box,
        "# The notifier sends through this user (notify.kannel_username / kannel_password).\n"
        + _group("sendsms-user", username=lay.username, password=lay.password, user_allow_ip="127.0.0.1"),
        "# Every SMS received goes to the API, which answers with the reply SMS (empty: none is sent).\n"
        "# X-Kannel-Coding: 2 in its answer makes the reply UCS-2 (Chinese); one segment only.\n"
        + _group("sms-service", keyword="default", catch_all=True, post_url=reply_url(lay.api_url, lay.key),
                 max_messages=1, concatenation=False, omit_empty=True, accept_x_kannel_headers=True),
    ]
    return "\n".join(parts)


def write(lay: Layout, out_dir: Path) -> Path:
    """Write ``kannel.conf`` and ``kannel-inbound.conf`` into ``out_dir`` (owner-readable only: they
    hold passwords and the callback key); returns the path of ``kannel.conf``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lay.spool_dir.mkdir(parents=True, exist_ok=True)
    lay.log_dir.mkdir(parents=True, exist_ok=True)
    for name, inbound in ((INBOUND_CONF, True), ("kannel.conf", False)):
        path = out_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(config_text(lay, inbound=inbound), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)
    return path


__all__ = [
    "COULD_NOT_FETCH",
    "DLR_MASK",
    "DLR_PATH",
    "FAKE_SMSC",
    "INBOUND_BOX",
    "INBOUND_CONF",
    "PHONES_SMSC",
    "REPLY_PATH",
    "KannelConfigError",
    "Layout",
    "admin_password",
    "callback_base",
    "config_text",
    "dlr_url",
    "inbound_ids",
    "layout",
    "reply_url",
    "smsc_ids",
    "write",
]
