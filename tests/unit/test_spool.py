from __future__ import annotations

from pathlib import Path

from ingest.spool import Spool


def test_spool_keeps_order_across_restarts(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(12):
        spool.put(f"m v={i}i".encode())
    (tmp_path / "0000000000000099.tmp").write_bytes(b"half-written")  # a crash before rename
    again = Spool(tmp_path)
    assert len(again) == 12
    assert not list(tmp_path.glob("*.tmp"))
    seen = []
    while (item := again.oldest()) is not None:
        path, body = item
        seen.append(body)
        again.remove(path)
    assert seen == [f"m v={i}i".encode() for i in range(12)]
    again.put(b"m v=99i")
    assert again.oldest() is not None
    assert again.oldest()[0].name == "0000000000000012.lp"  # type: ignore[index]


def test_bury_moves_a_batch_out_of_the_replay_queue(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"bad line")
    path, body = spool.oldest()  # type: ignore[misc]
    dead = spool.bury(body, path)
    assert len(spool) == 0
    assert dead.read_bytes() == b"bad line"
    assert spool.bury(b"other").parent == tmp_path / "dead"
