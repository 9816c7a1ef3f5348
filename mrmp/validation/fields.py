"""Turn plain mappings (from YAML) into typed dataclasses, gathering every issue.

A field's type comes from its annotation (bool, int, float, str, optional, list, dict with str keys, or another
dataclass, alone or in a list: those are built recursively, their issues keyed `outer.inner` or
`outer[i].inner`); bounds and choices come from `field(metadata=spec(...))`. Unknown keys get a "did you mean"
from `difflib`. A dataclass may accept a shorthand for its mapping (e.g. `scheduler: asha` for
`{name: asha}`) by defining a classmethod `shorthand(value) -> dict | None`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .errors import Issue

_MISSING = object()
_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def spec(
    *,
    choices: typing.Sequence[Any] | Callable[[], typing.Sequence[Any]] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    help: str = "",
) -> dict[str, Any]:
    """Field metadata: allowed choices (or a callable giving them), numeric bounds, a help line."""
    return {"choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt, "help": help}


class Reporter:
    """Collects issues for one source file; knows the line of each dotted key when parsed from YAML."""

    def __init__(self, file: str, lines: Mapping[str, int] | None = None):
        self.file = file
        self.lines = dict(lines or {})
        self.issues: list[Issue] = []

    def line_of(self, key: str) -> int | None:
        """The line of `key`, else of its closest enclosing key (`a.b[2].c` -> `a.b[2]`, `a.b`, `a`)."""
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[: key.rindex("[")] if key.endswith("]") else key.rpartition(".")[0]
        return None

    def add(self, key: str, message: str) -> None:
        self.issues.append(Issue(self.file, key, message, self.line_of(key)))


def suggest(name: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of {_type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return {type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def coerce(value: Any, tp: Any) -> Any:
    """Return `value` as type `tp`, or raise TypeError. Ints are accepted as floats; bools never as numbers."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg)
            except TypeError:
                continue
        raise TypeError
    if origin is list:
        if not isinstance(value, list | tuple):
            raise TypeError
        (item,) = typing.get_args(tp)
        return [coerce(v, item) for v in value]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise TypeError
        _, item = typing.get_args(tp)
        return {str(k): coerce(v, item) for k, v in value.items()}
    if tp is type(None):
        if value is None:
            return None
        raise TypeError
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _SCIENTIFIC.match(
            value
        ):  # YAML 1.1 reads `1.0e10` (no sign) as a string
            return float(value)
        raise TypeError
    if tp is str:
        if isinstance(value, str):
            return value
        raise TypeError
    if tp is Any:
        return value
    raise TypeError


def _check_bounds(value: Any, meta: Mapping[str, Any]) -> str | None:
    items = value if isinstance(value, list) else [value]
    for v in items:
        if not isinstance(v, int | float) or isinstance(v, bool):
            continue
        if meta.get("ge") is not None and v < meta["ge"]:
            return f"must be >= {meta['ge']}, got {v}"
        if meta.get("gt") is not None and v <= meta["gt"]:
            return f"must be > {meta['gt']}, got {v}"
        if meta.get("le") is not None and v > meta["le"]:
            return f"must be <= {meta['le']}, got {v}"
        if meta.get("lt") is not None and v >= meta["lt"]:
            return f"must be < {meta['lt']}, got {v}"
    choices = meta.get("choices")
    if choices is not None:
        options = list(choices() if callable(choices) else choices)
        for v in items:
            if v is not None and v not in options:
                shown = ", ".join(map(str, options))
                hint = suggest(v, map(str, options)) if isinstance(v, str) else ""
                return f"unknown value '{v}'{hint}; choose one of: {shown}"
    return None


def _dataclass_of(tp: Any) -> tuple[type | None, bool, bool]:
    """(dataclass, in a list, optional) when `tp` is a dataclass, `list[dataclass]`, or either `| None`."""
    optional = False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) != 1:
            return None, False, optional
        tp = args[0]
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        return (item, True, optional) if dataclasses.is_dataclass(item) else (None, False, optional)
    return (tp, False, optional) if dataclasses.is_dataclass(tp) else (None, False, optional)


def _nested(cls: type, many: bool, raw: Any, key: str, rep: Reporter) -> Any:
    """Build a dataclass-typed field (or a list of them), expanding each one's shorthand first."""
    shorthand = getattr(cls, "shorthand", None)

    def one(value: Any, where: str) -> Any:
        if shorthand is not None and not isinstance(value, Mapping):
            expanded = shorthand(value)
            if expanded is not None:
                value = expanded
        return build(cls, value, where, rep)

    if not many:
        return one(raw, key)
    items = raw if isinstance(raw, list) else [raw]  # one item may stand for a list of one
    return [one(v, f"{key}[{i}]" if len(items) > 1 else key) for i, v in enumerate(items)]


def build(cls: type, raw: Any, prefix: str, rep: Reporter, skip: typing.Iterable[str] = ()) -> Any:
    """Validate mapping `raw` into dataclass `cls`; issues go to `rep`. Returns an instance (defaults where bad)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        rep.add(prefix, f"must be a mapping, got {type(raw).__name__}")
        raw = {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    skip = set(skip)
    for key in raw:
        if key not in fields and key not in skip:
            rep.add(f"{prefix}.{key}" if prefix else str(key), f"unknown key{suggest(str(key), fields)}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in skip or name not in raw:
            continue
        key = f"{prefix}.{name}" if prefix else name
        sub, many, optional = _dataclass_of(hints[name])
        if sub is not None:
            if raw[name] is None and optional:
                values[name] = None
            else:
                values[name] = _nested(sub, many, raw[name], key, rep)
            continue
        try:
            value = coerce(raw[name], hints[name])
        except TypeError:
            hint = ""
            if isinstance(raw[name], bool) and hints[name] is str:
                hint = " (YAML reads the bare words off/on/no/yes as booleans: quote the word)"
            rep.add(key, f"expected {_type_name(hints[name])}, got {raw[name]!r}{hint}")
            continue
        problem = _check_bounds(value, f.metadata)
        if problem:
            rep.add(key, problem)
            continue
        values[name] = value
    return cls(**values)


def describe(cls: type, prefix: str) -> list[tuple[str, str, Any, str]]:
    """(dotted key, type, default, help) for every field: used by `mrmp validate --keys` and the docs."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((f"{prefix}.{f.name}", _type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return rows
