"""``examwatch simulate``: bring an inventory to life on the contract's topics."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from examwatch.cli import ConfigOption, fail, inventory_or_exit, settings_or_exit
from examwatch.mqtt import ConnectRefused
from simulators import district

app = typer.Typer(help="Simulate a district's devices.", invoke_without_command=True)


@app.callback()
def simulate(
    config: ConfigOption = None,
    interval: Annotated[int, typer.Option(min=1, help="seconds between a device's telemetry reports")] = 5,
    rounds: Annotated[int, typer.Option(min=0, help="reports per device, then stop; 0 = until Ctrl-C")] = 0,
) -> None:
    """Publish every inventory device's telemetry through one gateway connection per site.

    Each site gateway (MQTT user gw-<site>) marks its devices online (retained status) and then
    sends every device's readings each --interval seconds, with realistic values and noise.
    """
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = settings_or_exit(config)
    inventory = inventory_or_exit(settings.inventory)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        sent = district.run(
            settings,
            inventory,
            interval,
            rounds,
            stop,
            lambda n: logging.getLogger("examwatch.simulate").info("%d messages published", n),
        )
    except ConnectRefused as exc:
        fail(str(exc), code=3)
    typer.echo(f"published {sent} messages")
