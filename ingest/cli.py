"""``examwatch ingest``: run an ingest worker."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from examwatch.cli import (
    ConfigOption,
    LogLevel,
    LogLevelOption,
    fail,
    inventory_or_exit,
    run_service,
    settings_or_exit,
    start_logging,
)
from ingest import service

app = typer.Typer(help="MQTT → validated points → InfluxDB.", invoke_without_command=True)


@app.callback()
def ingest(
    config: ConfigOption = None,
    worker: Annotated[
        str, typer.Option(help="stable worker name: MQTT client id ingest-<worker> and its spool directory")
    ] = "1",
    log_level: LogLevelOption = LogLevel.INFO,
) -> None:
    """Consume exam/v1/# through the shared subscription $share/ingest, validate every message
    against the device contract and the inventory, and write points to InfluxDB in batches.

    A message is acknowledged only once its point is in InfluxDB or in the on-disk spool, so a
    crash or an InfluxDB outage loses nothing. Bad messages become `ingest_reject` records with
    their reason. Run several workers with different --worker names to split the load. SIGTERM
    flushes, acknowledges and disconnects. Prometheus metrics are served on ingest.metrics_port.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", worker):
        fail("--worker must be 1-32 letters, digits, '-' or '_'")
    start_logging(log_level)
    settings = settings_or_exit(config)
    inventory = inventory_or_exit(settings.inventory)
    run_service(lambda: service.run(settings, inventory, worker))
