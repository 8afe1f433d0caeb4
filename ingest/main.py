"""``examwatch ingest``, started lean: only what a running worker uses is imported.

The ``examwatch`` command's launcher (``examwatch.launch``) hands ``ingest`` here before the full
command line (typer, SQLAlchemy, YAML, every service's subcommands) is loaded, so the worker's
memory is its own work: settings, the compact inventory, the message check, the writer. The
typer subcommand in ``ingest/cli.py`` (for ``examwatch --help``) calls the same ``serve``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
HELP = """Consume exam/v1/# through the shared subscription $share/ingest, validate every message
against the device contract and the inventory, and write points to InfluxDB in batches.

A message is acknowledged only once its point is in InfluxDB or in the on-disk spool, so a crash
or an InfluxDB outage loses nothing. Bad messages become `ingest_reject` records with their
reason. Run several workers with different --worker names to split the load. SIGTERM flushes,
acknowledges and disconnects. Prometheus metrics are served on ingest.metrics_port."""


class _Help(argparse.RawDescriptionHelpFormatter):
    """The help as every examwatch command prints it: "Usage: …" first."""

    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "Usage: " if prefix is None else prefix)


def _fail(message: str, code: int) -> int:
    print(f"examwatch: {message}", file=sys.stderr)
    return code


def serve(config: Path | None, worker: str, log_level: str) -> int:
    """Run one ingest worker until SIGTERM/SIGINT; the exit status (2: bad input, 3: stopped by a fault)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", worker):
        return _fail("--worker must be 1-32 letters, digits, '-' or '_'", 2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # after the arguments: `--help` needs none of it
    from examwatch import compact, subscriber  # noqa: PLC0415
    from examwatch.datafile import DataFileError  # noqa: PLC0415
    from examwatch.settings import load_settings  # noqa: PLC0415
    from ingest import service  # noqa: PLC0415

    try:
        settings = load_settings(config)
        inventory = compact.ensure(settings.inventory, settings.ingest.spool_dir / ".inventory")
    except (DataFileError, compact.CompactError) as exc:
        return _fail(str(exc), 2)
    try:
        service.run(settings, inventory, worker)
    except subscriber.Refused as exc:
        return _fail(str(exc), 3)
    except OSError as exc:
        return _fail(f"stopped: {exc}", 3)
    return 0


def main(argv: list[str]) -> int:
    """``examwatch ingest [--config FILE] [--worker N] [--log-level LEVEL]``."""
    parser = argparse.ArgumentParser(prog="examwatch ingest", description=HELP,
                                     formatter_class=_Help)
    env = os.environ.get("EXAMWATCH_CONFIG")
    parser.add_argument("--config", "-c", type=Path, default=Path(env) if env else None,
                        help="settings TOML file (see config/examwatch.sample.toml); env EXAMWATCH_CONFIG")
    parser.add_argument("--worker", default="1",
                        help="stable worker name: MQTT client id ingest-<worker> and its spool directory")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS,
                        help="how much the service logs")
    args = parser.parse_args(argv)
    return serve(args.config, args.worker, args.log_level)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
