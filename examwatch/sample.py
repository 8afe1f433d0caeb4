"""Generate a realistic district inventory: the shipped sample, and larger ones for load tests.

Per site: an entrance with 4 face-recognition gates, 2 walk-through detectors and 2 cameras;
the paper storage room with 2 cameras (24 h recording) and its power sensor; a rest room for
early leavers with a jammer and a camera; and per exam room one jammer, two cameras and a
handheld detector. 30 rooms make 133 devices a site, 2,793 for 21 sites.
"""

from __future__ import annotations

from typing import IO, Any

import yaml

from examwatch.bands import EXAM_ROOM_BANDS

SCHOOLS = (
    "人大附中",
    "中关村中学",
    "北大附中",
    "清华附中",
    "一零一中学",
    "十一学校",
    "首师大附中",
    "八一学校",
    "育英学校",
    "理工附中",
    "交大附中",
    "北师大三附中",
    "五十七中",
    "二十中",
    "农大附中",
    "科大附中",
    "石油附中",
    "玉渊潭中学",
    "首师大二附中",
    "海淀实验中学",
    "教师进修附中",
)


def _device(dev_id: str, kind: str, room: str, **extra: Any) -> dict[str, Any]:
    return {"id": dev_id, "kind": kind, "room": room, **extra}


def site(number: int, rooms: int, backup: bool, district: str) -> dict[str, Any]:
    """One site as inventory data; ``number`` starts at 1."""
    sid = f"S{number:02d}" if number < 100 else f"S{number}"
    name = SCHOOLS[(number - 1) % len(SCHOOLS)]
    if number > len(SCHOOLS):
        name = f"{name}{(number - 1) // len(SCHOOLS) + 1}分校"
    bands = [b.value for b in EXAM_ROOM_BANDS]
    room_list: list[dict[str, Any]] = [
        {"id": "ENT", "name": "考点入口", "type": "entrance"},
        {"id": "VAULT", "name": "保密室", "type": "storage"},
        {"id": "REST", "name": "提前离场休息室", "type": "rest"},
    ]
    devices = [_device(f"{sid}-ENT-GATE{i}", "gate", "ENT") for i in range(1, 5)]
    devices += [_device(f"{sid}-ENT-WTD{i}", "detector", "ENT", form="walkthrough") for i in (1, 2)]
    devices += [_device(f"{sid}-ENT-CAM{i}", "camera", "ENT") for i in (1, 2)]
    devices += [_device(f"{sid}-VAULT-CAM{i}", "camera", "VAULT") for i in (1, 2)]
    devices.append(_device(f"{sid}-VAULT-PWR1", "power", "VAULT"))
    devices.append(_device(f"{sid}-REST-JAM1", "jammer", "REST", bands=bands))
    devices.append(_device(f"{sid}-REST-CAM1", "camera", "REST"))
    for r in range(1, rooms + 1):
        rid = f"R{r:02d}"
        room_list.append({"id": rid, "name": f"第{r:02d}考场", "type": "exam"})
        devices.append(_device(f"{sid}-{rid}-JAM1", "jammer", rid, bands=bands))
        devices += [_device(f"{sid}-{rid}-CAM{i}", "camera", rid) for i in (1, 2)]
        devices.append(_device(f"{sid}-{rid}-DET1", "detector", rid, form="handheld"))
    return {
        "id": sid,
        "name": name,
        "district": district,
        "type": "backup" if backup else "formal",
        "rooms": room_list,
        "devices": devices,
    }


def district(formal: int = 18, backup: int = 3, rooms: int = 30, name: str = "海淀区") -> dict[str, Any]:
    """A district of ``formal`` + ``backup`` sites of ``rooms`` exam rooms each."""
    sites = [site(n, rooms, n > formal, name) for n in range(1, formal + backup + 1)]
    return {"district": name, "sites": sites}


def dump(data: dict[str, Any], out: IO[str]) -> None:
    """Write inventory data as YAML, one line per device and room."""
    out.write("# examwatch inventory: sites, rooms and devices (see docs/configuration.md).\n")
    yaml.safe_dump(data, out, allow_unicode=True, sort_keys=False, width=400, default_flow_style=None)
