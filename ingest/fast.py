"""Per-kind compiled checks: msgspec decoders and line-protocol formatters built from the kinds' models.

The device contract is written once, as the pydantic models of ``examwatch/kinds/``, and the
message check (``examwatch.check``) judges by them. Ingest runs every message through them at
thousands a second, so it compiles, for each kind's telemetry and events, an equivalent msgspec
Struct (same fields, types, bounds, patterns, defaults; unknown fields forbidden; the event
union tagged on ``event``) and a formatter, generated as source, that writes the InfluxDB field
set straight from the decoded struct.

The fast path may only *accept*. Whatever it does not accept, for any reason, goes to the message
check, which accepts it or names the refusal: so every refusal, its reason and its detail are the
check's own, and a difference between the two validators can cost speed, never strictness.
``tests/unit/test_fast_decode.py`` holds the fast path to that: for valid and hostile payloads
of every kind, it accepts only what the models accept, and writes the same bytes.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import annotated_types as at
import msgspec
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from examwatch.kinds import ENVELOPE_FIELDS, Channel, DeviceKind
from examwatch.lineproto import quote

#: Envelope fields become the point's time and tags; an event's type becomes its ``event`` tag.
NOT_FIELDS = ENVELOPE_FIELDS | {"event"}
_NEVER = "\x00never"  # the tag of the placeholder that makes a one-event union a tagged union


class Unsupported(Exception):
    """A schema uses something the compiler does not translate; that channel stays on the models."""


class FastStruct(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of the compiled structs (each declares every field of its model, the envelope's too),
    with the generated ``lp()`` formatter."""

    if typing.TYPE_CHECKING:  # fields of every compiled struct; declared by each, with their bounds
        ts: int
        device: str
        drill: bool

    #: ``,event=<type>`` for events, "" for telemetry; None for the placeholder (never accepted)
    EVENT_TAG: ClassVar[str | None] = ""

    def lp(self) -> str:
        """The InfluxDB field set of this payload with a trailing comma, or "" (generated per schema)."""
        raise NotImplementedError


def _anchored(pattern: str) -> str:
    # pydantic's regexes are Rust's, where '$' is the end of the text; in Python's re (msgspec)
    # '$' also matches before a final newline, which would let "1920x1080\n" through.
    return pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern


def _meta(items: list[Any]) -> dict[str, Any]:
    """msgspec.Meta arguments for pydantic's constraint objects."""
    out: dict[str, Any] = {}
    for m in items:
        if isinstance(m, FieldInfo):
            out |= _meta(list(m.metadata))
        elif isinstance(m, at.Ge):
            out["ge"] = m.ge
        elif isinstance(m, at.Le):
            out["le"] = m.le
        elif isinstance(m, at.Gt):
            out["gt"] = m.gt
        elif isinstance(m, at.Lt):
            out["lt"] = m.lt
        elif isinstance(m, at.MinLen):
            out["min_length"] = m.min_length
        elif isinstance(m, at.MaxLen):
            out["max_length"] = m.max_length
        elif getattr(m, "pattern", None) is not None:
            out["pattern"] = _anchored(m.pattern)
        elif getattr(m, "discriminator", None) is not None or m is None:
            continue
        else:
            raise Unsupported(f"constraint {m!r}")
    return out


def _type(tp: Any, constraints: list[Any]) -> Any:
    """The msgspec type for a pydantic annotation and its constraints."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extra = get_args(tp)
        return _type(base, [*constraints, *extra])
    if origin in (Union, types.UnionType):
        return typing.Union[tuple(_type(a, constraints) for a in get_args(tp))]  # noqa: UP007 - built at run time
    if origin is dict:
        key, value = get_args(tp)
        if not (isinstance(key, type) and issubclass(key, Enum)):
            raise Unsupported(f"dict keys {key!r}")
        return dict.__class_getitem__((key, _type(value, [])))
    if tp is type(None) or origin is Literal or (isinstance(tp, type) and issubclass(tp, Enum)):
        return tp
    if tp in (int, float, str):
        meta = _meta(constraints)
        return Annotated[tp, msgspec.Meta(**meta)] if meta else tp
    if tp is bool:
        return tp
    raise Unsupported(f"type {tp!r}")


def _kind_of(tp: Any) -> str:
    """How a field's value is written: float, int, bool, str, enum, or dict of those."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _kind_of(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        kinds = {_kind_of(a) for a in get_args(tp) if a is not type(None)}
        if len(kinds) != 1:
            raise Unsupported(f"mixed union {tp!r}")
        return kinds.pop()
    if origin is dict:
        return "dict:" + _kind_of(get_args(tp)[1])
    if origin is Literal:
        if not all(isinstance(a, str) for a in get_args(tp)):
            raise Unsupported(f"non-string literal {tp!r}")
        return "str"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "enum"
    for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if tp is t:
            return name
    raise Unsupported(f"type {tp!r}")


def _formatter(model: type[BaseModel], env: dict[str, Any]) -> str:
    """Source of ``lp(self)``: the same pairs, in the same order, as ``lineproto.fields(model)``."""
    body = ["def lp(self):", "    out = []", "    a = out.append"]
    for name, info in model.model_fields.items():
        if name in NOT_FIELDS:
            continue
        kind = _kind_of(info.annotation)
        optional = not info.is_required() and info.default is None
        lines: list[str]
        if kind == "float":
            lines = [f"a(f'{name}={{v!r}}')"]
        elif kind == "int":
            lines = [f"a(f'{name}={{v}}i')"]
        elif kind == "bool":
            lines = [f"a('{name}=true' if v else '{name}=false')"]
        elif kind in ("str", "enum"):
            lines = [f"a('{name}=' + quote(v))"]
        elif kind.startswith("dict:"):
            env[f"P_{name}"] = prefixes = {k: f"{name}_{k.value}=" for k in get_args(_dict_of(info.annotation))[0]}
            assert prefixes
            value = {"float": "repr(x)", "bool": "('true' if x else 'false')", "int": "f'{x}i'"}.get(kind[5:])
            if value is None:
                raise Unsupported(f"dict values of {name}")
            lines = ["for k, x in v.items():", f"    a(P_{name}[k] + {value})"]
        else:
            raise Unsupported(f"field {name}")
        body.append(f"    v = self.{name}")
        if optional:
            body.append("    if v is not None:")
            body += [f"        {ln}" for ln in lines]
        else:
            body += [f"    {ln}" for ln in lines]
    body.append("    return ','.join(out) + ',' if out else ''")
    return "\n".join(body)


def _dict_of(tp: Any) -> Any:
    """The ``dict[...]`` inside an optional, annotated field type."""
    if get_origin(tp) is dict:
        return tp
    for a in get_args(tp):
        found = _dict_of(a) if get_origin(a) in (dict, Annotated, Union, types.UnionType) else None
        if found is not None:
            return found
    return None


def _struct(model: type[BaseModel], tag: str | None) -> type[FastStruct]:
    """The msgspec struct and formatter of one pydantic payload model."""
    fields: list[tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
        if name == "event" and tag is not None:
            continue  # the union's tag field
        tp = _type(info.annotation, list(info.metadata))
        if info.is_required():
            fields.append((name, tp, msgspec.NODEFAULT))
        else:
            default = info.default
            fields.append((name, tp, msgspec.field(default=default)))
    env: dict[str, Any] = {"quote": quote, "Enum": Enum}
    namespace: dict[str, Any] = {}
    exec(compile(_formatter(model, env), f"<lp {model.__name__}>", "exec"), env, namespace)  # noqa: S102 - our own source
    kw: dict[str, Any] = {"kw_only": True, "forbid_unknown_fields": True}
    if tag is not None:
        kw |= {"tag_field": "event", "tag": tag}
    cls = msgspec.defstruct(
        f"Fast{model.__name__}",
        [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields],
        bases=(FastStruct,),
        namespace={"lp": namespace["lp"], "EVENT_TAG": f",event={tag}" if tag is not None else ""},
        **kw,
    )
    return typing.cast(type[FastStruct], cls)


class _Never(FastStruct, tag_field="event", tag=_NEVER, kw_only=True, forbid_unknown_fields=True):
    EVENT_TAG: ClassVar[str | None] = None


def compile_schema(kind: DeviceKind, channel: Channel) -> Callable[[bytes], FastStruct]:
    """The fast decoder of ``kind``'s ``channel`` payload; ``Unsupported`` when it cannot be built."""
    schema = kind.schema(channel)
    if channel is Channel.TELEMETRY:
        decoder = msgspec.json.Decoder(_struct(schema, None))
    else:
        members = get_args(get_args(schema)[0]) if get_origin(schema) is Annotated else get_args(schema)
        if get_origin(schema) is Annotated and not members:
            members = (get_args(schema)[0],)
        structs: list[Any] = []
        for model in members:
            tags = get_args(model.model_fields["event"].annotation)
            if len(tags) != 1:
                raise Unsupported(f"{model.__name__}: event must be one literal")
            structs.append(_struct(model, tags[0]))
        if len(structs) == 1:  # msgspec checks a lone struct's tag only when present: make it a union
            structs.append(_Never)
        decoder = msgspec.json.Decoder(typing.Union[tuple(structs)])  # noqa: UP007 - built at run time
    decode: Callable[[bytes], FastStruct] = decoder.decode
    return decode


#: What the fast path raises for anything it does not accept (the message check decides those).
DecodeError = msgspec.ValidationError, msgspec.DecodeError
