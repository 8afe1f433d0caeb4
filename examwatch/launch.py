"""The ``examwatch`` command's entry: a long-running worker starts lean, everything else gets the full CLI.

The full command line (``examwatch.cli``) loads typer, SQLAlchemy, YAML and every service's
subcommands: 60 MB before a service does any work. A service that registers a lean entry in the
``examwatch.lean`` entry-point group (``ingest``) is started through it instead, with only what
it uses; ``examwatch --help`` still lists it through its typer subcommand.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points


def main() -> None:
    """Dispatch ``examwatch NAME …`` to a lean entry when there is one, else to the full CLI."""
    args = sys.argv[1:]
    if args and not args[0].startswith("-"):
        for ep in entry_points(group="examwatch.lean", name=args[0]):
            sys.exit(ep.load()(args[1:]))
    from examwatch.cli import main as full  # noqa: PLC0415 - only when no lean entry serves the command

    full()
