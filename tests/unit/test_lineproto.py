"""Line protocol values and field sets, fast paths and fallbacks alike."""

from __future__ import annotations

from enum import IntEnum, StrEnum

from pydantic import BaseModel

from examwatch import lineproto
from examwatch.bands import Band
from examwatch.kinds.jammer import JammerMode, JammerTelemetry


class Level(IntEnum):
    LOW = 1


class Colour(StrEnum):
    RED = "red"


class Flag(int):
    pass


def test_values_of_every_type() -> None:
    assert lineproto.value(27.5) == "27.5"
    assert lineproto.value(0.1 + 0.2) == repr(0.1 + 0.2)  # full precision, as repr
    assert lineproto.value(3) == "3i"
    assert lineproto.value(True) == "true"
    assert lineproto.value(False) == "false"
    assert lineproto.value('say "hi"\\now\n') == '"say \\"hi\\"\\\\now\\n"'
    assert lineproto.value(Colour.RED) == '"red"'
    assert lineproto.value(JammerMode.SCHEDULE) == '"schedule"'
    assert lineproto.value(Level.LOW) == "1i"  # an int-valued enum stays an integer
    assert lineproto.value(Flag(7)) == "7i"  # subclasses take the general path


def test_jammer_bands_flatten_and_envelope_is_skipped() -> None:
    msg = JammerTelemetry(ts=1_800_000_000_000, device="S01-R01-JAM1", on=True, mode=JammerMode.MANUAL,
                          rf_dbm={Band.N78: 27.25, Band.B1: -3.0}, channels_on={Band.N78: True},
                          fault_code=0, drill=True)
    pairs = lineproto.fields(msg)
    assert pairs == ["on=true", 'mode="manual"', "rf_dbm_n78=27.25", "rf_dbm_b1=-3.0",
                     "channels_on_n78=true", "fault_code=0i"]
    assert lineproto.fields(msg) == pairs  # the cached band prefixes give the same text


class FreeForm(BaseModel):
    readings: dict[str, float]


def test_free_form_dict_keys_are_not_cached() -> None:
    before = sum(len(v) for v in lineproto._PREFIXES.values())
    for i in range(50):
        assert lineproto.fields(FreeForm(readings={f"k{i}": 1.5})) == [f"readings_k{i}=1.5"]
    assert sum(len(v) for v in lineproto._PREFIXES.values()) == before
