"""Load YAML data files (inventory, rules, rosters, scenarios) into pydantic models with line numbers.

PyYAML's composed node tree keeps where every value started; pydantic's errors carry the path
of the value they refuse. Joining the two turns a validation error into one line a person can
fix: ``district.yaml:412: sites[3].devices[7].kind: Input should be 'gate', 'jammer', ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    import yaml

M = TypeVar("M", bound=BaseModel)
Loc = tuple[int | str, ...]


class DataFileError(Exception):
    """A data file that cannot be used; the message names the file, the line and the field."""


def _line_map(node: yaml.Node, path: Loc, lines: dict[Loc, int]) -> None:
    lines[path] = node.start_mark.line + 1
    node_id = getattr(node, "id", None)
    if node_id == "mapping":  # yaml.MappingNode; yaml itself is imported only when parsing
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif node_id == "sequence":
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), lines)


def _parse(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    # Imported here: a service that only formats errors (settings, ingest's refusals) needs no YAML.
    import yaml  # noqa: PLC0415

    # libyaml's loader keeps marks too, and parses a province-sized inventory ten times faster.
    loader_type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        loader = loader_type(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise DataFileError(f"{where}: not valid YAML: {problem}") from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return data, lines


def format_loc(loc: Loc) -> str:
    """``("sites", 3, "devices", 7, "kind")`` → ``sites[3].devices[7].kind``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _nearest_line(loc: Loc, lines: dict[Loc, int]) -> int | None:
    # A part that is not in the file (a discriminated union's tag, e.g. ``rules[1].threshold``)
    # is skipped, so the error still points at the deepest value the file has.
    found: Loc = ()
    for part in loc:
        if (*found, part) in lines:
            found = (*found, part)
    return lines.get(found)


def explain(exc: ValidationError, source: str, lines: dict[Loc, int]) -> str:
    """Render a validation error as lines ``file:line: field: reason``, first error first."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if isinstance(p, int | str))
        line = _nearest_line(loc, lines)
        where = f"{source}:{line}" if line is not None else source
        out.append(f"{where}: {format_loc(loc)}: {err['msg']}")
    return "\n".join(out)


def load_text(text: str, model: type[M], source: str, context: dict[str, Any] | None = None) -> M:
    """Parse YAML ``text`` into ``model``; raise DataFileError naming ``source``, line and field.

    ``context`` reaches the model's validators (pydantic validation context).
    """
    data, lines = _parse(text, source)
    if data is None:
        raise DataFileError(f"{source}: the file is empty")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise DataFileError(explain(exc, source, lines)) from None


def load(path: Path, model: type[M], context: dict[str, Any] | None = None) -> M:
    """Read and validate a YAML data file; raise DataFileError for anything a person must fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: cannot be read: {exc}") from None
    return load_text(text, model, str(path), context)
