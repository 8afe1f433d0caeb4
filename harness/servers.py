"""Real mosquitto and influxd processes on free loopback ports, with data under a given directory.

Used by the test fixtures and the benchmarks; never touches the system's own services.
"""

from __future__ import annotations

import getpass
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from examwatch import kannel as kannel_conf
from examwatch.links import callback_key


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nothing listens on, below the kernel's ephemeral range.

    A port the kernel hands out (bind to 0) can be taken again, before the server binds it, as
    the local end of any outgoing connection; below that range only another listener can take it.
    """
    floor = _ephemeral_floor()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, floor - 20_000), floor)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def wait_for(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``cond`` until it is truthy; fail with ``what`` when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def find_binary(name: str, *extra_dirs: str) -> str:
    for d in extra_dirs:
        if Path(d, name).exists():
            return str(Path(d, name))
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (run scripts/setup first)")
    return found


class Server:
    """A child process with its log in ``root``; SIGTERM or SIGKILL, then start again."""

    name = "server"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 20.0) -> None:
        self._log = (self.root / f"{self.name}.out").open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.ready() or self.proc is None or self.proc.poll() is not None, timeout, f"{self.name}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")

    def log_tail(self) -> str:
        return (self.root / f"{self.name}.out").read_text(errors="replace")[-2000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class Influx(Server):
    name = "influxd"

    def __init__(self, root: Path, port: int | None = None) -> None:
        super().__init__(root)
        self.port = port or free_port()
        rpc = free_port()
        data = root / "data"
        self.config = root / "influxdb.conf"
        self.config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
            f'[meta]\n  dir = "{data}/meta"\n'
            f'[data]\n  dir = "{data}/data"\n  wal-dir = "{data}/wal"\n  query-log-enabled = false\n'
            f"[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            f'[logging]\n  level = "warn"\n'
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [find_binary("influxd"), "run", "-config", str(self.config)]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as r:  # noqa: S310 - loopback
                return bool(r.status == 204)
        except OSError:
            return False


class Mosquitto(Server):
    """mosquitto started on a config written by ``examwatch broker-config``."""

    name = "mosquitto"

    def __init__(self, root: Path, conf: Path, port: int) -> None:
        super().__init__(root)
        self.conf = conf
        self.port = port

    def command(self) -> list[str]:
        return [find_binary("mosquitto"), "-c", str(self.conf)]

    def ready(self) -> bool:
        return port_open(self.port)


def current_user() -> str:
    return getpass.getuser() if os.geteuid() != 0 else "root"


FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (ucs-2|text) ([^>]*)>")


class _KannelBox(Server):
    def __init__(self, root: Path, name: str, conf: Path, port: int) -> None:
        super().__init__(root)
        self.name = name
        self.conf = conf
        self.port = port

    def command(self) -> list[str]:
        return [find_binary(self.name), str(self.conf)]

    def ready(self) -> bool:
        return port_open(self.port)


def _kannel_status(url: str) -> str:
    """bearerbox's ``status.txt`` ("" while it does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - our own http:// URL
            return str(r.read().decode(errors="replace"))
    except OSError:
        return ""


class _InboundBox(_KannelBox):
    """The receiving smsbox (``kannel-inbound.conf``): no port of its own; ready once bearerbox lists it."""

    def __init__(self, root: Path, conf: Path, status_url: str) -> None:
        super().__init__(root, "smsbox-inbound", conf, 0)
        self.status_url = status_url

    def command(self) -> list[str]:
        return [find_binary("smsbox"), str(self.conf)]

    def ready(self) -> bool:
        boxes = _kannel_status(self.status_url).partition("Box connections:")[2]
        return f"smsbox:{kannel_conf.INBOUND_BOX}," in boxes


class FakeSmsc(Server):
    """Kannel's test SMSC: prints every message it receives; ``messages()`` decodes them."""

    name = "fakesmsc"

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(root)
        self.port = port

    def command(self) -> list[str]:
        # -m 0 with a message template: without one it reads its socket only once a second.
        return [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.port), "-m", "0", "1 2 text x"]

    def ready(self) -> bool:
        path = self.root / f"{self.name}.out"
        return path.exists() and "Connecting to" in path.read_text(errors="replace")

    def messages(self) -> list[tuple[str, str, str]]:
        """(from, to, text) of every message received so far, UCS-2 decoded."""
        path = self.root / f"{self.name}.out"
        out = []
        for sender, to, coding, body in _GOT.findall(path.read_text(errors="replace") if path.exists() else ""):
            raw = urllib.parse.unquote_to_bytes(body.replace("+", " "))  # form encoding: + is a space
            out.append((sender, to, raw.decode("utf-16-be") if coding == "ucs-2" else raw.decode()))
        return out


class Kannel:
    """bearerbox + smsbox + fakesmsc on free loopback ports, with a spool store under ``root``.

    The configuration is the one ``examwatch kannel-config`` writes (``examwatch.kannel``).
    ``sendsms_url`` takes ``username``/``password`` = ``self.user``/``self.password``; every text
    sent lands at ``self.smsc`` (``messages()``). Replies from phones come in on a second fake SMSC
    link (``phones_port``, fakesmsc's line protocol): ``reply(phone, text)`` sends one, and Kannel
    posts it to the API at ``api_url`` (with the callback key of ``secret``); the API's answer goes
    out through ``self.smsc`` like every other text.
    """

    user = "examwatch"
    password = "sendsms-test-password"
    #: our number: where phones send replies
    number = "10690000"

    def __init__(self, root: Path, api_url: str = "http://127.0.0.1:9",
                 secret: str = "kannel-test-secret-0123456789") -> None:  # noqa: S107 - a throwaway test secret
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.admin_port, self.box_port, self.smsc_port, self.sendsms_port, self.phones_port = (free_port() for _ in range(5))
        self.api_url = api_url
        self.key = callback_key(secret)
        self.admin_password = "admin-test"
        layout = kannel_conf.Layout(
            api_url=api_url, key=self.key, username=self.user, password=self.password,
            admin_password=self.admin_password, sendsms_port=self.sendsms_port, admin_port=self.admin_port,
            box_port=self.box_port, spool_dir=root / "spool", log_dir=root, fake_smsc_port=self.smsc_port,
            phones_port=self.phones_port, http_retries=2, http_retry_delay_s=1)
        self.conf = kannel_conf.write(layout, root)
        self.bearerbox = _KannelBox(root, "bearerbox", self.conf, self.box_port)
        self.smsbox = _KannelBox(root, "smsbox", self.conf, self.sendsms_port)
        self.status_url = f"http://127.0.0.1:{self.admin_port}/status.txt?password={self.admin_password}"
        self.inbound = _InboundBox(root, self.conf.with_name(kannel_conf.INBOUND_CONF), self.status_url)
        self.smsc = FakeSmsc(root, self.smsc_port)
        self._phone_lock = threading.Lock()

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def start(self) -> None:
        """bearerbox and its SMSC link first, then the boxes: once sendsms answers, texts go out
        (``0: Accepted``), never ``3: Queued`` behind a link that is still connecting."""
        self.bearerbox.start()
        self.smsc.start()
        wait_for(self.smsc_connected, 20, "fakesmsc to connect to bearerbox")
        self.smsbox.start()
        self.inbound.start()

    def smsc_connected(self) -> bool:
        return "online" in _kannel_status(self.status_url).partition("SMSC connections:")[2]

    def reply(self, phone: str, text: str, to: str | None = None, kind: str = "text") -> None:
        """A phone sends ``text`` to our number: one line of fakesmsc's protocol on the phones link.

        ``kind`` "data" sends ``text`` URL-encoded as 8-bit data. Returns once bearerbox has read
        the line (it closes the link after our end-of-file)."""
        if "\n" in text or "\r" in text:
            raise ValueError("one SMS is one line of the fakesmsc protocol")
        line = f"{phone} {to or self.number} {kind} {text}\n".encode()
        with self._phone_lock, socket.create_connection(("127.0.0.1", self.phones_port), timeout=10) as s:
            s.sendall(line)
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):  # nothing is sent to us on this link; wait for bearerbox to close it
                pass

    def stop(self) -> None:
        for server in (self.smsc, self.inbound, self.smsbox, self.bearerbox):
            server.stop()


def postgres_bin(name: str) -> str:
    """Debian keeps PostgreSQL's server programs off PATH, under /usr/lib/postgresql/<version>/bin."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    return find_binary(name)


class Postgres:
    """A PostgreSQL cluster of its own on a free loopback port (as user ``postgres`` under root,
    because initdb refuses root), with trust auth; ``url(db)`` names a database on it."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: its parents are private to root, and the server may run as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="examwatch-pg-"))
        self.root.chmod(0o777)
        self.port = free_port()
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._ctl = [
            *self._as_user,
            postgres_bin("pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "pg.log"),
            "-w",
        ]

    def start(self) -> None:
        subprocess.run(
            [*self._as_user, postgres_bin("initdb"), "-D", str(self.root / "data"), "-U", "postgres", "-A", "trust"],
            check=True,
            capture_output=True,
        )
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        subprocess.run([*self._ctl, "-o", opts, "start"], check=True, capture_output=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        subprocess.run([*self._ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
