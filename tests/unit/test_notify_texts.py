"""Every text, for every rule, kind and transition, is Chinese and fits one SMS (70 UCS-2 characters),
short code, reply and drill mark included, for the district's longest names and worse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from examwatch import roster
from examwatch.alarm import Severity
from examwatch.inventory import load as load_inventory
from examwatch.roster import SUBJECT_KINDS
from examwatch.rulebook.files import load_dir
from notify import messages
from notify.labels import KIND_ZH, SEVERITY_ZH, rule_words
from notify.messages import MessageKind, Text

ROOT = Path(__file__).parents[2]
KINDS: tuple[MessageKind, ...] = ("alert", "update", "reminder", "escalation", "all_clear", "summary",
                                  "summary_clear")
#: ASCII a text may carry: site ids, short codes, times, counts, the reply's digit, UPS
_ALLOWED_ASCII = re.compile(r"(?<![A-Za-z0-9])(S\d+|[A-Z][A-Z2-9]{1,5}|\d+|UPS|NVR)(?![A-Za-z0-9])")

DUTY = roster.load(ROOT / "config" / "roster.yaml")
INVENTORY = load_inventory(ROOT / "config" / "district.yaml")
RULES = sorted({r.name for _kind, r in load_dir(ROOT / "config" / "rules").rules})
LONGEST_SITE = max((s.name for s in INVENTORY.sites), key=len)
LONGEST_ROOM = max((r.name for s in INVENTORY.sites for r in s.rooms), key=len)
ALL_SITES = tuple(s.id for s in INVENTORY.sites)


def test_every_shipped_rule_has_a_chinese_label() -> None:
    missing = [r for r in RULES if r not in DUTY.labels]
    assert missing == [], f"rules without a label in config/roster.yaml: {missing}"
    assert set(KIND_ZH) >= set(SUBJECT_KINDS)
    assert set(SEVERITY_ZH) == set(Severity)


def _texts(rule: str, kind: str, site_name: str, room: str, what: str | None = None) -> list[str]:
    words = what if what is not None else rule_words(DUTY, rule, kind, "zh")
    out = []
    for severity in Severity:
        for message in KINDS:
            for drill in (False, True):
                for reply in (True, False):
                    m = Text(kind=message, severity=severity, drill=drill, what=words, at="23:59:59",
                             site="S21", site_name=site_name, where=room if kind not in ("site",) else "",
                             code="K7MQ", n=12, lasted_min=1439, acked_by="指挥中心值班(白)",
                             count=12_345, sites=ALL_SITES, reply=reply,
                             link="https://kaowu.haidian.example.edu.cn/m/AAAAAAAAAAAAAAAA")
                    out.append(messages.render(m))
    return out


@pytest.mark.parametrize("rule", [*RULES, "a_rule_nobody_labelled"])
def test_every_rule_kind_and_transition_fits_one_sms_in_chinese(rule: str) -> None:
    for kind in SUBJECT_KINDS:
        for text in _texts(rule, kind, LONGEST_SITE, LONGEST_ROOM):
            assert len(text) <= messages.UCS2_SEGMENT, text
            assert messages.segment_limit(text) == messages.UCS2_SEGMENT  # Chinese: UCS-2
            english = _ALLOWED_ASCII.sub("", text)
            assert not re.search(r"[A-Za-z]{2,}", english), f"English in {text!r}"


def test_what_happened_survives_the_longest_names_and_labels() -> None:
    long_label = "保密室不间断电源电池电量即将耗尽请立即处置"  # 21 of the 24 characters a label may have
    for text in _texts("power_ups_low", "power", "首都师范大学附属实验学校国际部分校", "第三十号标准化考场(备用)",
                       long_label):
        assert len(text) <= messages.UCS2_SEGMENT, text
        assert "保密室不间断电源" in text, text  # cut at the end, if at all, never dropped
    alerts = _texts("power_ups_low", "power", "首都师范大学附属实验学校国际部分校", "第三十号标准化考场(备用)", long_label)
    assert any("“1 K7MQ”" in t for t in alerts)  # the short code and how to reply are kept


def test_an_alert_carries_its_link_where_it_fits() -> None:
    m = Text(kind="alert", severity=Severity.CRITICAL, drill=False, what="市电中断", at="17:42:05", site="S03",
             site_name="北大附中", where="保密室", code="K7", link="http://k.cn/m/AAAAAAAAAAAAAAAA")
    assert messages.render(m) == "【考务告警】紧急 S03 保密室市电中断 17:42 回复“1 K7”确认 http://k.cn/m/AAAAAAAAAAAAAAAA"
    long_url = Text(**{**{f: getattr(m, f) for f in m.__dataclass_fields__},
                       "link": "https://kaowu.haidian.example.edu.cn/m/AAAAAAAAAAAAAAAA"})
    assert messages.render(long_url) == "【考务告警】紧急 S03 北大附中 保密室市电中断 17:42:05 回复“1 K7”确认"
