"""The radio bands an exam-room jammer covers: the phones' downlinks, plus Wi-Fi and Bluetooth.

A band's name is the key of its RF reading in a jammer's payload (``rf_dbm.n78``) and the
suffix of its InfluxDB field (``rf_dbm_n78``).
"""

from __future__ import annotations

from enum import StrEnum


class Band(StrEnum):
    N28 = "n28"
    CDMA800 = "cdma800"
    GSM900 = "gsm900"
    DCS1800 = "dcs1800"
    B39 = "b39"
    B34 = "b34"
    B1 = "b1"
    B40 = "b40"
    N41 = "n41"
    N78 = "n78"
    N79 = "n79"
    WIFI24 = "wifi24"
    WIFI58 = "wifi58"
    BLUETOOTH = "bluetooth"
    GNSS = "gnss"


#: Downlink ranges in MHz (several for Wi-Fi 5 GHz). GNSS is listed for jammers that carry it,
#: but exam rules do not require it.
DOWNLINK_MHZ: dict[Band, tuple[tuple[float, float], ...]] = {
    Band.N28: ((758, 788),),
    Band.CDMA800: ((870, 880),),
    Band.GSM900: ((930, 960),),
    Band.DCS1800: ((1805, 1880),),
    Band.B39: ((1880, 1920),),
    Band.B34: ((2010, 2025),),
    Band.B1: ((2110, 2170),),
    Band.B40: ((2300, 2400),),
    Band.N41: ((2515, 2675),),
    Band.N78: ((3300, 3600),),
    Band.N79: ((4800, 4960),),
    Band.WIFI24: ((2400, 2483.5),),
    Band.WIFI58: ((5150, 5350), (5725, 5850)),
    Band.BLUETOOTH: ((2400, 2483.5),),
    Band.GNSS: ((1559, 1610),),
}

#: What a standard exam-room jammer must cover: every carrier's downlink and both Wi-Fi bands.
EXAM_ROOM_BANDS: tuple[Band, ...] = (
    Band.N28,
    Band.CDMA800,
    Band.GSM900,
    Band.DCS1800,
    Band.B39,
    Band.B34,
    Band.B1,
    Band.B40,
    Band.N41,
    Band.N78,
    Band.N79,
    Band.WIFI24,
    Band.WIFI58,
)
