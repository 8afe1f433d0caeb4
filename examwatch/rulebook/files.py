"""Rules files: ``config/rules/<kind>.yaml`` per device kind, and ``site.yaml`` for room and site rules.

The file's name says which kind its rules watch. A file that is not valid is refused with
``file:line: field: reason`` (examwatch.datafile), and so is a rule name used twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from examwatch import datafile
from examwatch.datafile import DataFileError
from examwatch.kinds import KINDS
from examwatch.rulebook.configs import (
    SITE,
    AbsenceConfig,
    CoverageConfig,
    IntakeConfig,
    RatioConfig,
    ReadinessConfig,
    SkewConfig,
    ThresholdConfig,
    TimetableConfig,
)

AnyRule = Annotated[
    ThresholdConfig
    | AbsenceConfig
    | RatioConfig
    | TimetableConfig
    | ReadinessConfig
    | CoverageConfig
    | SkewConfig
    | IntakeConfig,
    Field(discriminator="type"),
]
#: every rule type a rules file may name
TYPE_NAMES = frozenset(get_args(c.model_fields["type"].annotation)[0] for c in get_args(get_args(AnyRule)[0]))


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [{"rules": [
        {"name": "power_offline", "type": "absence", "severity": "critical", "timeout_s": 60},
        {"name": "power_mains_lost", "type": "threshold", "field": "mains_v",
         "levels": [{"severity": "critical", "below": 187}], "clear": {"above": 200}},
    ]}]})
    rules: tuple[AnyRule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names repeated: {', '.join(dup)}")
        return self


@dataclass(frozen=True)
class RuleSet:
    """Every rule, with the kind (file) it came from."""

    rules: tuple[tuple[str, AnyRule], ...]

    def names(self) -> list[str]:
        return [r.name for _, r in self.rules]


def load_file(path: Path) -> RulesFile:
    kind = path.stem
    if kind not in KINDS and kind != SITE:
        raise DataFileError(
            f"{path}: a rules file is named after a device kind "
            f"({', '.join(sorted(KINDS))}) or {SITE}: not {kind!r}"
        )
    return datafile.load(path, RulesFile, context={"kind": kind})


def load_dir(directory: Path) -> RuleSet:
    """Load every ``*.yaml`` in ``directory``; DataFileError names the file, line and field."""
    if not directory.is_dir():
        raise DataFileError(f"{directory}: no such rules directory")
    return combine({path.stem: load_file(path) for path in sorted(directory.glob("*.yaml"))}, directory)


def combine(files: Mapping[str, RulesFile], directory: Path) -> RuleSet:
    """The rules of ``files`` (kind or ``site`` → its file) as one set; DataFileError when a rule name
    is used twice or the site's silence timeout is not the shortest."""
    rules: list[tuple[str, AnyRule]] = []
    where: dict[str, Path] = {}
    for kind in sorted(files):
        path = directory / f"{kind}.yaml"
        for rule in files[kind].rules:
            if rule.name in where:
                raise DataFileError(
                    f"{path}: rules: rule name {rule.name!r} is already used in {where[rule.name]}"
                )
            where[rule.name] = path
            rules.append((kind, rule))
    _check_site_timeout(rules, directory)
    _check_absence_rooms(rules, directory)
    return RuleSet(tuple(rules))


def _check_absence_rooms(rules: list[tuple[str, AnyRule]], directory: Path) -> None:
    """Two absence rules of one kind may split its devices by room type, never share one: a
    device has one timeout, and would otherwise raise two offline alarms."""
    by_kind: dict[str, list[AbsenceConfig]] = {}
    for kind, rule in rules:
        if kind != SITE and isinstance(rule, AbsenceConfig):
            by_kind.setdefault(kind, []).append(rule)
    for kind, found in by_kind.items():
        for i, a in enumerate(found):
            for b in found[i + 1:]:
                shared = set(a.rooms) & set(b.rooms) if a.rooms and b.rooms else set(a.rooms or b.rooms or ["any"])
                if shared:
                    raise DataFileError(
                        f"{directory / f'{kind}.yaml'}: rules: {a.name} and {b.name} both watch the silence of "
                        f"{kind}s in {', '.join(sorted(map(str, shared)))} rooms; give each its own rooms"
                    )


def _check_site_timeout(rules: list[tuple[str, AnyRule]], directory: Path) -> None:
    site = [r for k, r in rules if k == SITE and isinstance(r, AbsenceConfig)]
    device = [r for k, r in rules if k != SITE and isinstance(r, AbsenceConfig)]
    if not site or not device:
        return
    shortest = min(min([r.timeout_s, *r.overrides.values()]) for r in device)
    if site[0].timeout_s >= shortest:
        raise DataFileError(
            f"{directory / 'site.yaml'}: rules: {site[0].name}.timeout_s ({site[0].timeout_s:g} s) must be "
            f"shorter than every device absence timeout (shortest {shortest:g} s), or a dark site is seen "
            "device by device"
        )
