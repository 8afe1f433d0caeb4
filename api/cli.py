"""``examwatch api``: serve the command-center API, and issue its tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from examwatch.cli import ConfigOption, fail, settings_or_exit
from examwatch.datafile import DataFileError
from examwatch.settings import Settings
from examwatch.store import open_store
from examwatch.store.access import Role, create_token, list_tokens, revoke_token

app = typer.Typer(help="The command-center API (FastAPI): serve it, issue tokens.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: issue, list, revoke. Only their hashes are stored.",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")


def _settings(config: Path | None) -> Settings:
    return settings_or_exit(config)


@app.command("serve")
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="listen address (default: [api] host)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port (default: [api] port)")] = None,
) -> None:
    """Serve the API with uvicorn; every endpoint but /health needs a token.

    Reads the inventory and timetable files, opens (and migrates) the state store, and
    queries InfluxDB. The OpenAPI document is at /openapi.json, the docs at /docs.
    """
    import uvicorn  # noqa: PLC0415 - only `serve` needs the server

    from api.app import create_app  # noqa: PLC0415 - keeps `token create` free of FastAPI's import time
    from api.world import World  # noqa: PLC0415

    settings = _settings(config)
    try:
        world = World.open(settings, config)
    except DataFileError as exc:
        fail(str(exc))
    uvicorn.run(create_app(world), host=host or settings.api.host, port=port or settings.api.port,
                access_log=settings.api.access_log, log_level="info")


@app.command("openapi")
def openapi(config: ConfigOption = None) -> None:
    """Print the OpenAPI document (JSON)."""
    from api.app import create_app  # noqa: PLC0415
    from api.world import World  # noqa: PLC0415

    settings = _settings(config)
    try:
        world = World.open(settings, config)
    except DataFileError as exc:
        fail(str(exc))
    typer.echo(json.dumps(create_app(world).openapi(), ensure_ascii=False, indent=1))


@token_app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="viewer reads; operator acknowledges and resolves; admin configures")],
    name: Annotated[str, typer.Option(help="who holds the token (shown in the audit log)")],
    config: ConfigOption = None,
) -> None:
    """Issue a token and print it once; the store keeps only its SHA-256."""
    if not name.strip() or len(name) > 64:
        fail("--name must be 1 to 64 characters")
    settings = _settings(config)
    view, plain = create_token(open_store(settings.store.url), name.strip(), role, "cli")
    typer.echo(f"token {view.id} for {view.name} ({view.role}):", err=True)
    typer.echo(plain)


@token_app.command("list")
def token_list(config: ConfigOption = None) -> None:
    """List tokens (id, holder, role, revoked or not); secrets are never shown again."""
    settings = _settings(config)
    for t in list_tokens(open_store(settings.store.url)):
        typer.echo(f"{t.id}\t{t.name}\t{t.role}\t{'revoked' if t.revoked_ns else 'active'}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="the token's id (see `token list`)")],
                 config: ConfigOption = None) -> None:
    """Revoke a token: a running API refuses it within 2 s (its token cache)."""
    settings = _settings(config)
    if not revoke_token(open_store(settings.store.url), token_id):
        fail(f"no active token {token_id}")
    typer.echo(f"token {token_id} revoked")
