"""Ingest's compiled fast path accepts only what the kinds' models accept, and writes the same bytes.

A cold decoder judges every message by the message check and formats from the pydantic model; a
warm one has the topic's compiled check and formatter. For valid payloads of every kind and
channel, and for payloads mutated at random, both must give the same line and the same reason.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examwatch import sample
from examwatch.inventory import Inventory
from examwatch.kinds import KINDS, Channel
from harness.stack import telemetry
from ingest.decode import Decoder
from ingest.fast import compile_schema
from tests.unit.test_kinds_contract import EVENTS

INV = Inventory.model_validate(sample.district(formal=1, backup=0, rooms=2))
DEVICE = {kind: next(d for d, ref in INV.devices.items() if ref.kind == kind) for kind in KINDS}
NOW_NS = time.time_ns()
TS = NOW_NS // 1_000_000 - 2500


def _topic(kind: str, channel: str) -> str:
    ref = INV.devices[DEVICE[kind]]
    return f"exam/v1/{ref.site}/{kind}/{ref.id}/{channel}"


def _valid(kind: str, channel: str, seed: int) -> dict[str, Any]:
    if channel == "telemetry":
        doc: dict[str, Any] = json.loads(telemetry(DEVICE[kind], kind, ts_ms=TS))
        rng = random.Random(seed)
        for key in [k for k, v in doc.items() if v is not None and k not in ("ts", "device")]:
            if rng.random() < 0.2:
                doc.pop(key)  # optional fields absent (required ones make a refusal, also compared)
        return doc
    example = EVENTS[kind][seed % len(EVENTS[kind])]
    return {"ts": TS, "device": DEVICE[kind], **example}


def _strip_time(line: bytes | None) -> bytes | None:
    # rejection records carry a per-decoder unique receive time; everything else must be equal
    return line.rsplit(b" ", 1)[0] if line is not None and line.startswith(b"ingest_reject") else line


def _warm() -> Decoder:
    decoder = Decoder(INV.devices, 65_536, 86_400)
    for kind in KINDS:
        for channel in ("telemetry", "event"):
            payload = json.dumps(_valid(kind, channel, 0)).encode()
            assert decoder.decode(_topic(kind, channel), payload, NOW_NS)[1] is None
    return decoder


WARM = _warm()


def _compare(kind: str, channel: str, payload: bytes) -> tuple[bytes | None, object]:
    topic = _topic(kind, channel)
    cold = Decoder(INV.devices, 65_536, 86_400).decode(topic, payload, NOW_NS)
    warm = WARM.decode(topic, payload, NOW_NS)
    assert (_strip_time(warm[0]), warm[1]) == (_strip_time(cold[0]), cold[1]), payload
    return warm


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("channel", [Channel.TELEMETRY, Channel.EVENT])
def test_every_kind_and_channel_compiles(kind: str, channel: Channel) -> None:
    assert compile_schema(KINDS[kind], channel) is not None


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("channel", ["telemetry", "event"])
def test_valid_payloads_give_the_same_line_both_ways(kind: str, channel: str) -> None:
    for seed in range(30):
        doc = _valid(kind, channel, seed)
        for drill in (False, True):
            line, reason = _compare(kind, channel, json.dumps({**doc, "drill": drill}).encode())
            if reason is None:
                assert line is not None
                assert (b",drill=true" in line) is drill


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["1920x1080", "1920x1080\n", "schedule", "n78", "pass", "alert", "in",
                                           "\ud800", "fail", "", "D1"]),
    st.dictionaries(st.sampled_from(["n78", "n28", "wifi24", "lte", "", "N78"]),
                    st.one_of(st.floats(-100, 100), st.booleans(), st.integers(-5, 50)), max_size=4),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(KINDS)), channel=st.sampled_from(["telemetry", "event"]), seed=st.integers(0, 99),
       changes=st.dictionaries(st.text(min_size=1, max_size=20), JSON_VALUES, max_size=3),
       pick=st.lists(st.integers(0, 30), max_size=3), values=st.lists(JSON_VALUES, min_size=3, max_size=3),
       drop=st.integers(-1, 30))
def test_mutated_payloads_get_the_same_verdict_both_ways(
    kind: str, channel: str, seed: int, changes: dict[str, Any], pick: list[int], values: list[Any], drop: int
) -> None:
    doc = _valid(kind, channel, seed)
    keys = list(doc)
    for i, value in zip(pick, values, strict=False):  # existing fields given other values
        doc[keys[i % len(keys)]] = value
    if 0 <= drop < len(keys):
        doc.pop(keys[drop], None)
    doc.update(changes)  # fields of any name
    try:
        payload = json.dumps(doc).encode()
    except UnicodeEncodeError:
        payload = json.dumps(doc, ensure_ascii=True).encode()
    _compare(kind, channel, payload)


@pytest.mark.parametrize("raw", [
    b'{"ts": %d, "device": "%s", "recording": true, "fps": 25, "bitrate_kbps": 1, "video_loss": false, '
    b'"tamper": false, "fps": 26}',  # a repeated key: the last one counts, in both
    b'{"ts": %d, "device": "%s", "recording": true, "fps": 25, "bitrate_kbps": 1, "video_loss": false, '
    b'"tamper": false, "resolution": "\\ud800"}',
    b'{"ts": %d, "device": "%s", "recording": true, "fps": 25, "bitrate_kbps": 1, "video_loss": false, '
    b'"tamper": false, "resolution": "1920x1080\\n"}',  # '$' in a pattern is the end of the text
    b'{"ts": %d, "device": "%s", "recording": true, "fps": 1e400, "bitrate_kbps": 1, "video_loss": false, '
    b'"tamper": false}',
    b'  {"ts": %d, "device": "%s", "recording": true, "fps": 25, "bitrate_kbps": 1, "video_loss": false, '
    b'"tamper": false}\n ',
])
def test_edge_encodings_get_the_same_verdict_both_ways(raw: bytes) -> None:
    _compare("camera", "telemetry", raw % (TS, DEVICE["camera"].encode()))


def test_an_event_with_no_fields_but_its_type_gets_the_same_line() -> None:
    payload = json.dumps({"ts": TS, "device": DEVICE["gate"], "event": "pass"}).encode()
    line, reason = _compare("gate", "event", payload)
    assert reason is None
    assert line is not None
    assert b",event=pass skew_ms=" in line
