"""Real mosquitto and influxd processes on free loopback ports, with data under a given directory.

Used by the test fixtures and the benchmarks; never touches the system's own services.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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
