"""A broken inventory is refused with the file, the line and the field; a good one indexes every device."""

from __future__ import annotations

from pathlib import Path

import pytest

from examwatch import inventory, sample
from examwatch.datafile import DataFileError

GOOD = """\
district: 测试区
sites:
- id: S01
  name: 一中
  district: 测试区
  rooms:
  - {id: R01, name: 第01考场}
  - {id: VAULT, name: 保密室, type: storage}
  devices:
  - {id: S01-R01-JAM1, kind: jammer, room: R01, bands: [n78, gsm900]}
  - {id: S01-R01-DET1, kind: detector, room: R01, form: handheld}
  - {id: S01-VAULT-PWR1, kind: power, room: VAULT}
"""


def _load(tmp_path: Path, text: str) -> inventory.Inventory:
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    return inventory.load(path)


def test_good_inventory_indexes_devices_with_tags(tmp_path: Path) -> None:
    inv = _load(tmp_path, GOOD)
    ref = inv.devices["S01-R01-JAM1"]
    assert (ref.site, ref.room, ref.kind) == ("S01", "R01", "jammer")
    assert ref.tags == ",device=S01-R01-JAM1,kind=jammer,room=R01,site=S01"
    assert [b.value for b in inv.device_specs["S01-R01-JAM1"].bands] == ["n78", "gsm900"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("kind: jammer", "kind: drone", ":10: sites[0].devices[0].kind: Input should be"),
        ("bands: [n78, gsm900]", "bands: [n78, n99]", ":10: sites[0].devices[0].bands[1]: Input should be"),
        (", bands: [n78, gsm900]", "", ":10: sites[0].devices[0]: Value error, a jammer must list the bands"),
        ("room: VAULT}", "room: ROOF}", "device S01-VAULT-PWR1 is in room ROOF"),
        ("S01-R01-DET1", "S01-R01-JAM1", "device id S01-R01-JAM1 is used twice"),
        ("form: handheld", "form: pocket", ":11: sites[0].devices[1].form: Input should be"),
        ("  name: 一中\n", "", ":3: sites[0].name: Field required"),
        (
            "  - {id: R01, name: 第01考场}",
            "  - {id: R01, name: 第01考场, floor: 3}",
            ":7: sites[0].rooms[0].floor: Extra inputs",
        ),
        ("district: 测试区\nsites:", "district: 测试区\nsites: [", "not valid YAML"),
    ],
)
def test_broken_inventory_names_line_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    with pytest.raises(DataFileError) as err:
        _load(tmp_path, GOOD.replace(old, new, 1))
    assert expected in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "inv.yaml"))


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        inventory.load(tmp_path / "nope.yaml")
    with pytest.raises(DataFileError, match="empty"):
        _load(tmp_path, "# nothing\n")


def test_shipped_sample_district_is_the_generated_one() -> None:
    shipped = inventory.load(Path(__file__).parents[2] / "config" / "district.yaml")
    generated = inventory.Inventory.model_validate(sample.district())
    assert shipped == generated
    assert len(shipped.sites) == 21
    assert sum(s.type == "backup" for s in shipped.sites) == 3
    assert all(len([r for r in s.rooms if r.type == "exam"]) == 30 for s in shipped.sites)
    assert len(shipped.devices) == 21 * 133
