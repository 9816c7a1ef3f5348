"""The search space: one small class per parameter kind (float, int, categorical), each a dotted run-config key.

A parameter knows how to ask an Optuna trial for a value (define-by-run), how the searcher stores that value
(`label`: a categorical choice that is a list, such as a seen-rate set, is stored as its JSON text, since Optuna
keeps scalars only) and how to turn it back (`decode`), which values to validate (`edges`: every choice, or both
ends of a range), and its finite grid, if any. `when` makes it conditional on earlier keys.

Pure Python: importing this module never imports Ray, Optuna or MLflow.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mrmp.validation import Reporter

_SCALARS = (str, int, float, bool, type(None))


@dataclass
class Param:
    """One search-space entry: a dotted run-config key, its distribution, and the conditions that make it apply."""

    kind: ClassVar[str] = ""
    key: str
    when: dict[str, list[Any]] = field(default_factory=dict)

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial (define-by-run) for this parameter; returns the stored label."""
        raise NotImplementedError

    def label(self, value: Any) -> Any:
        return value

    def decode(self, stored: Any) -> Any:
        """The value a searcher returned -> the config value."""
        return stored

    def edges(self) -> list[tuple[Any, str]]:
        """(value, sub-key for the error line) worth validating."""
        raise NotImplementedError

    def grid(self) -> list[Any] | None:
        """Every value, or None when there is no finite grid (a float without a step)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass
class Categorical(Param):
    kind: ClassVar[str] = "categorical"
    choices: list[Any] = field(default_factory=list)

    @property
    def _labelled(self) -> bool:
        return any(not isinstance(c, _SCALARS) for c in self.choices)

    def label(self, value: Any) -> Any:
        return json.dumps(value) if self._labelled else value

    def decode(self, stored: Any) -> Any:
        for c in self.choices:
            if self.label(c) == stored:
                return c
        raise ValueError(f"{self.key}: {stored!r} is not one of the choices")

    def suggest(self, trial: Any) -> Any:
        return trial.suggest_categorical(self.key, [self.label(c) for c in self.choices])

    def edges(self) -> list[tuple[Any, str]]:
        return [(c, "choices") for c in self.choices]

    def grid(self) -> list[Any]:
        return list(self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(
            json.dumps(c) if isinstance(c, list | dict) else str(c) for c in self.choices
        )


@dataclass
class _Range(Param):
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    def _cast(self, v: float) -> Any:
        return v

    def _steps(self) -> int:
        return math.floor((self.high - self.low) / self.step + 1e-9)

    def _at_step(self, i: int) -> Any:
        return self._cast(round(self.low + i * self.step, 12))

    def top(self) -> Any:
        """The highest value a searcher can return (the high end, aligned to the step)."""
        return self._at_step(self._steps()) if self.step else self.high

    def edges(self) -> list[tuple[Any, str]]:
        return [(self.low, "low"), (self.top(), "high")]

    def decode(self, stored: Any) -> Any:
        return self._cast(stored)

    def describe(self) -> str:
        extra = " log" if self.log else (f" step {self.step:g}" if self.step else "")
        return f"{self.kind} [{self.low:g}, {self.high:g}]{extra}"


@dataclass
class Float(_Range):
    kind: ClassVar[str] = "float"

    def _cast(self, v: float) -> float:
        return float(v)

    def suggest(self, trial: Any) -> float:
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def grid(self) -> list[Any] | None:
        return [self._at_step(i) for i in range(self._steps() + 1)] if self.step else None


@dataclass
class Int(_Range):
    kind: ClassVar[str] = "int"

    def _cast(self, v: float) -> int:
        return int(v)

    def suggest(self, trial: Any) -> int:
        return trial.suggest_int(
            self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
        )

    def grid(self) -> list[Any]:
        return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))


KINDS: dict[str, type[Param]] = {k.kind: k for k in (Float, Int, Categorical)}
_RANGE_KEYS = ("low", "high", "step", "log")


def parse_param(key: str, entry: Any, where: str, sections: tuple[str, ...], rep: Reporter) -> Param | None:
    """One `space:` entry -> a Param; every problem goes to `rep` (None when the entry is unusable)."""
    from mrmp.validation import suggest

    if "." not in key or key.split(".")[0] not in sections:
        rep.add(where, f"a search key is a dotted run-config key section.key ({', '.join(sections)})")
        return None
    if not isinstance(entry, dict):
        rep.add(where, "expected {type: float|int|categorical, ...}")
        return None
    kind = entry.get("type")
    if kind not in KINDS:
        got = f"unknown type {kind!r}{suggest(str(kind), KINDS)}; " if kind is not None else ""
        rep.add(
            f"{where}.type" if kind is not None else where,
            f"{got}needs `type: float`, `int` or `categorical`",
        )
        return None
    before = len(rep.issues)
    allowed = {"type", "when", *(("choices",) if kind == "categorical" else _RANGE_KEYS)}
    for extra in entry:
        if extra not in allowed:
            if kind == "categorical" and extra in _RANGE_KEYS:
                rep.add(f"{where}.{extra}", "only float and int ranges take low/high/step/log")
            elif extra == "choices":
                rep.add(
                    f"{where}.choices", f"a {kind} range takes low/high, not choices (use type: categorical)"
                )
            else:
                rep.add(f"{where}.{extra}", f"unknown key{suggest(str(extra), sorted(allowed))}")
    when = _when(entry.get("when"), where, rep)
    if kind == "categorical":
        param: Param | None = _categorical(key, entry.get("choices"), where, when, rep)
    else:
        param = _range(KINDS[kind], key, entry, where, when, rep)
    return param if len(rep.issues) == before else None


def _categorical(key: str, choices: Any, where: str, when: dict, rep: Reporter) -> Param | None:
    if not isinstance(choices, list) or not choices:
        rep.add(f"{where}.choices", "a categorical needs a non-empty list of choices")
        return None
    if any(choices[i] == choices[j] for i in range(len(choices)) for j in range(i)):
        rep.add(f"{where}.choices", "choices must be distinct")
    return Categorical(key=key, when=when, choices=list(choices))


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _range(cls: type[Param], key: str, entry: dict, where: str, when: dict, rep: Reporter) -> Param | None:
    low, high, step, log = entry.get("low"), entry.get("high"), entry.get("step"), entry.get("log", False)
    for sub, v in (("low", low), ("high", high), ("step", step)):
        if v is not None and not _number(v):
            rep.add(f"{where}.{sub}", f"expected a number, got {v!r}")
            return None
    if not isinstance(log, bool):
        rep.add(f"{where}.log", f"expected true or false, got {log!r}")
        return None
    if low is None or high is None:
        rep.add(where, f"a {cls.kind} range needs `low` and `high`")
        return None
    if low > high:
        rep.add(f"{where}.low", f"low ({low}) must be <= high ({high})")
    if log and low <= 0:
        rep.add(f"{where}.low", "a log range needs low > 0")
    if log and step is not None:
        rep.add(f"{where}.step", "Optuna takes either `log: true` or `step`, not both")
    if step is not None and step <= 0:
        rep.add(f"{where}.step", "must be > 0")
    if cls is Int:
        for sub, v in (("low", low), ("high", high), ("step", step)):
            if v is not None and float(v) != int(v):
                rep.add(f"{where}.{sub}", f"an int range needs integers, got {v}")
        return Int(
            key=key,
            when=when,
            low=int(low),
            high=int(high),
            log=log,
            step=None if step is None else int(step),
        )
    return Float(key=key, when=when, low=float(low), high=float(high), log=log, step=step)


def _when(raw: Any, where: str, rep: Reporter) -> dict[str, list[Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        rep.add(f"{where}.when", "expected a mapping key -> allowed values, e.g. {method.name: [srmp, mrmp]}")
        return {}
    return {str(k): (v if isinstance(v, list) else [v]) for k, v in raw.items()}
