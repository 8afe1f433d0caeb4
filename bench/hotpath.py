"""``python -m bench.hotpath``: ingest's own per-message work, without network or servers.

Runs the bench's message mix through what ingest's MQTT callback does for each message
(``Decoder.decode`` and ``Batcher.add``) and reports CPU µs per message, best of several
rounds. It is quiet enough on a shared machine to compare one change with the next; the end
to end cost, paho's share included, is what ``bench.ingest`` measures.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from bench.load import Broker, PublishSpec, messages
from examwatch import inventory
from ingest.batch import Batcher
from ingest.decode import Decoder

REPO = Path(__file__).resolve().parent.parent


def sample(inv: inventory.Inventory, path: Path, count: int) -> list[tuple[str, bytes]]:
    """``count`` (topic, payload) pairs of the bench mix over every site, with device clocks near now."""
    sites = tuple(s.id for s in inv.sites)
    spec = PublishSpec(Broker("", 0, ""), path, sites, 1, time.time_ns() // 1_000_000 - 3_600_000, 1, 0)
    return [(topic, payload) for _, topic, payload in islice(messages(spec, inv), count)]


def per_message_us(decoder: Decoder, msgs: list[tuple[str, bytes]], batch_size: int = 5000) -> float:
    """CPU µs per message for decode + batch over ``msgs``."""
    batcher = Batcher(batch_size, 0.2)
    now = time.time_ns()
    t0 = time.process_time()
    for mid, (topic, payload) in enumerate(msgs):
        line, _reason = decoder.decode(topic, payload, now)
        batcher.add(line, mid % 65535 + 1, 1)
    return 1e6 * (time.process_time() - t0) / len(msgs)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")


@app.command()
def main(
    count: Annotated[int, typer.Option(min=100, help="messages per round")] = 50_000,
    rounds: Annotated[int, typer.Option(min=1, help="rounds; the best is reported")] = 5,
    profile: Annotated[bool, typer.Option(help="print a cProfile of one round instead")] = False,
    inventory_file: Annotated[Path, typer.Option("--inventory")] = REPO / "config" / "district.yaml",
) -> None:
    """Time ingest's per-message decode and batching on the benchmark's message mix."""
    inv = inventory.load(inventory_file)
    msgs = sample(inv, inventory_file, count)
    decoder = Decoder(inv.devices, 65_536, 86_400)
    per_message_us(decoder, msgs[:2000])  # routes cached, adapters built
    if profile:
        prof = cProfile.Profile()
        prof.runcall(per_message_us, decoder, msgs)
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return
    best = min(per_message_us(decoder, msgs) for _ in range(rounds))
    typer.echo(f"decode + batch: {best:.2f} µs/msg (best of {rounds} × {count})")


if __name__ == "__main__":
    app()
