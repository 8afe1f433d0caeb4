"""The inventory in the compact form ingest runs on: built once from the YAML, loaded without models.

Checking an inventory needs YAML and a pydantic model per site, room and device: 30 MB and more
for a province, which a process that only needs "which site, kind and room is device X" should
not carry for its whole life. So the YAML is checked and compiled once, in a child process
(``python -m examwatch.compact SOURCE OUT``), into a small text file named by the source's
SHA-256; a worker finds the file its inventory compiles to, or builds it, and loads only ids:

    {"format": 2, "source_sha256": "…", "district": "…", "kinds": […], "sites": […], "rooms": […]}
    S01-R01-CAM1<TAB>kind<TAB>site<TAB>room          # one line per device; kind, site, room: indexes

It is read line by line, so loading holds no more than the result. Held in memory, a device is
its id and one integer; its ``DeviceRef`` (with the InfluxDB tag set) is made when asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from examwatch.lineproto import escape_tag

if TYPE_CHECKING:
    from examwatch.inventory import Inventory

FORMAT = 2


class CompactError(Exception):
    """The inventory cannot be compiled (the message names the file, line and field) or read."""


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """A device as ingest and rules see it: where it is, and its InfluxDB tag set."""

    id: str
    kind: str
    site: str
    room: str
    tags: str  # ",device=…,kind=…,room=…,site=…" in InfluxDB's sorted key order


def tags(site: str, room: str, kind: str, device: str) -> str:
    """A device's tag set, keys in InfluxDB's sorted order, each part escaped."""
    return f",device={escape_tag(device)},kind={kind},room={escape_tag(room)},site={escape_tag(site)}"


def compile_inventory(inventory: Inventory, source_sha256: str = "") -> bytes:
    """The compact form of a checked inventory (a JSON header line, then one line per device)."""
    kinds: dict[str, int] = {}
    rooms: dict[str, int] = {}
    lines: list[str] = []
    for i, site in enumerate(inventory.sites):
        for d in site.devices:
            k = kinds.setdefault(d.kind.value, len(kinds))
            lines.append(f"{d.id}\t{k}\t{i}\t{rooms.setdefault(d.room, len(rooms))}\n")
    header = {
        "format": FORMAT,
        "source_sha256": source_sha256,
        "district": inventory.district,
        "kinds": list(kinds),
        "sites": [s.id for s in inventory.sites],
        "rooms": list(rooms),
    }
    return (json.dumps(header, ensure_ascii=False, separators=(",", ":")) + "\n" + "".join(lines)).encode()


class CompactInventory:
    """Devices by id, as the message check needs them (``get``), from a compiled file."""

    def __init__(self, header: dict[str, Any], lines: Iterable[str]) -> None:
        if header.get("format") != FORMAT:
            raise CompactError(f"compact inventory format {header.get('format')!r}, expected {FORMAT}")
        self.district: str = header["district"]
        self._kinds: list[str] = [sys.intern(k) for k in header["kinds"]]
        self.site_ids: list[str] = [sys.intern(s) for s in header["sites"]]
        self._rooms: list[str] = [sys.intern(r) for r in header["rooms"]]
        self.sites = frozenset(self.site_ids)
        nk, nr = len(self._kinds), len(self._rooms)
        self._nk, self._nr = nk, nr
        # One int per device: (site × rooms + room) × kinds + kind.
        devices: dict[str, int] = {}
        for line in lines:
            device, k, s, r = line.split("\t")
            devices[device] = (int(s) * nr + int(r)) * nk + int(k)
        self._devices = devices

    @classmethod
    def read(cls, path: Path) -> CompactInventory:
        """Load a compiled file, line by line."""
        try:
            with path.open(encoding="utf-8") as f:
                return cls(json.loads(f.readline()), f)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise CompactError(f"{path}: not a compact inventory: {exc}") from None

    def __len__(self) -> int:
        return len(self._devices)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._devices

    def get(self, device_id: str, /) -> DeviceRef | None:
        """The device ``device_id``, or None when the inventory lacks it."""
        packed = self._devices.get(device_id)
        if packed is None:
            return None
        rest, k = divmod(packed, self._nk)
        s, r = divmod(rest, self._nr)
        kind, site, room = self._kinds[k], self.site_ids[s], self._rooms[r]
        return DeviceRef(device_id, kind, site, room, tags(site, room, kind, device_id))


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise CompactError(f"{path}: cannot be read: {exc}") from None


def ensure(source: Path, cache_dir: Path) -> CompactInventory:
    """The compact form of the inventory ``source``, compiled in a child process unless a file
    compiled from the same bytes is in ``cache_dir``; ``CompactError`` names the fault."""
    digest = _sha256(source)
    out = cache_dir / f"inventory-{digest[:20]}.v{FORMAT}.txt"
    if not out.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(  # noqa: S603 - this interpreter, our module, paths from the settings
            [sys.executable, "-m", "examwatch.compact", str(source), str(out)],
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CompactError(done.stderr.strip() or f"compiling {source} failed ({done.returncode})")
        for stale in cache_dir.glob("inventory-*"):
            if stale != out:
                stale.unlink(missing_ok=True)
    return CompactInventory.read(out)


def _compile_file(source: Path, out: Path) -> None:
    from examwatch.inventory import load  # noqa: PLC0415 - YAML and pydantic models: this child process only

    digest = _sha256(source)
    body = compile_inventory(load(source), digest)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(body)
    tmp.replace(out)  # another worker compiling the same file at once writes the same bytes


def main(argv: list[str]) -> int:
    """``python -m examwatch.compact SOURCE OUT``: check SOURCE and write its compact form to OUT."""
    from examwatch.datafile import DataFileError  # noqa: PLC0415 - see _compile_file

    if len(argv) != 2:
        print("usage: python -m examwatch.compact INVENTORY.yaml OUT.txt", file=sys.stderr)
        return 2
    try:
        _compile_file(Path(argv[0]), Path(argv[1]))
    except (DataFileError, CompactError) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
