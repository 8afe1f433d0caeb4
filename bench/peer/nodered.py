"""The Node-RED peer: installed from npm into this directory, and run on the flow in ``flow.json``.

``package.json`` pins Node-RED 4 and ``node-red-contrib-influxdb``; ``npm ci`` installs them here
(``node_modules/`` is not committed). Each run gets a userDir of its own with the flow, its
broker credentials (plain JSON: ``credentialSecret`` is false, the password is a bench's) and
``settings.js``. Node-RED is started as ``node red.js`` itself, so the measured pid is the one
doing the work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from harness.servers import Server, free_port

HERE = Path(__file__).resolve().parent
RED_JS = HERE / "node_modules" / "node-red" / "red.js"


def install() -> None:
    """Install the pinned Node-RED and InfluxDB nodes here, unless they already are."""
    if RED_JS.exists() and (HERE / "node_modules" / "node-red-contrib-influxdb").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("bench/peer needs Node.js 18+ and npm (apt-get install nodejs npm)")
    command = "ci" if (HERE / "package-lock.json").exists() else "install"
    subprocess.run([npm, command, "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)


def flow(mqtt_port: int, mqtt_user: str, influx_port: int, database: str) -> list[dict[str, object]]:
    """``flow.json`` with this run's ports, user and database."""
    text = (HERE / "flow.json").read_text()
    for key, value in (("@MQTT_PORT@", mqtt_port), ("@MQTT_USER@", mqtt_user), ("@INFLUX_PORT@", influx_port),
                       ("@DATABASE@", database)):
        text = text.replace(key, str(value))
    doc: list[dict[str, object]] = json.loads(text)
    return doc


class NodeRed(Server):
    """Node-RED running the peer flow; ready once it is connected to the broker."""

    name = "node-red"

    def __init__(self, root: Path, mqtt_port: int, mqtt_user: str, mqtt_password: str, influx_port: int,
                 database: str) -> None:
        super().__init__(root)
        self.user_dir = root / "userdir"
        self.user_dir.mkdir(parents=True, exist_ok=True)
        (self.user_dir / "flows.json").write_text(json.dumps(flow(mqtt_port, mqtt_user, influx_port, database)))
        creds = {"broker": {"user": mqtt_user, "password": mqtt_password}}
        (self.user_dir / "flows_cred.json").write_text(json.dumps(creds))
        shutil.copy(HERE / "settings.js", self.user_dir / "settings.js")
        self.ui_port = free_port()
        self._log_path = root / f"{self.name}.out"

    def command(self) -> list[str]:
        node = shutil.which("node") or "node"
        return [node, str(RED_JS), "--settings", str(self.user_dir / "settings.js"), "--userDir", str(self.user_dir)]

    def start(self, timeout: float = 60.0) -> None:
        """Start with this run's UI port (unused: the editor is off) in the environment."""
        os.environ["PEER_UI_PORT"] = str(self.ui_port)
        super().start(timeout)

    def ready(self) -> bool:
        if not self._log_path.exists():
            return False
        text = self._log_path.read_text(errors="replace")
        return "Connected to broker" in text and "Started flows" in text
