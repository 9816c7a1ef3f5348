"""Cross-checks of a sweep before anything runs: conditions, samples built through the core's config validation,
objectives defined for every method the space can sample, the searcher's grid.

Every sample that matters is built: the base with the first value of every key, then each categorical choice and
each range end in turn (with the values that make its conditions true), each repeat and each target rate. A
problem is reported at the sweep file's line it comes from (a space entry, a repeat, base), with the sample.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mrmp.config import config_from_dict
from mrmp.methods import registry
from mrmp.validation import ConfigError, Issue, Reporter

from .objectives import undefined
from .schema import SECTIONS
from .space import Param
from .spec import SweepSpec

MAX_GRID = 10_000
MAX_DATA_VARIANTS = 64


def check_spec(spec: SweepSpec, rep: Reporter) -> None:
    """Every cross-check; issues go to `rep`."""
    _check_conditions(spec, rep)
    if rep.issues:
        return
    _check_samples(spec, rep)
    _check_searcher(spec, rep)


def _fmt(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _check_conditions(spec: SweepSpec, rep: Reporter) -> None:
    order = [p.key for p in spec.space]
    params = spec.params
    for p in spec.space:
        for k, allowed in p.when.items():
            where = f"space.{p.key}.when"
            if k == p.key:
                rep.add(where, "a key cannot depend on itself")
            elif k in params:
                if order.index(k) > order.index(p.key):
                    rep.add(where, f"{k} must come before {p.key} in `space` (conditions read earlier keys)")
                elif params[k].kind != "categorical":
                    rep.add(where, f"{k} is a {params[k].kind} range: conditions need a categorical key")
                else:
                    missing = [a for a in allowed if a not in params[k].grid()]
                    if missing:
                        rep.add(where, f"{_fmt(missing)} not among the choices of {k}")
            elif k.split(".")[0] not in SECTIONS or "." not in k:
                rep.add(where, f"{k}: expected a space key or a run-config key section.key")
            elif spec.base_value(k) not in allowed:
                rep.add(where, f"never true: {k} is {spec.base_value(k)!r} in base and not searched")
        if p.key in spec.repeats:
            rep.add(f"space.{p.key}", "is also in sweep.repeats/seeds: search it or repeat it, not both")
        if p.key == "method.rate" and spec.targets:
            rep.add(
                "space.method.rate",
                "sweep.target_rates sets method.rate of single-rate methods (one training per target): "
                "search the targets there, or drop target_rates",
            )
    data_params = [p for p in spec.space if p.key.startswith("data.")]
    for p in data_params:
        if p.grid() is None:
            rep.add(f"space.{p.key}", "data keys must be categorical or int: each dataset is prepared once")
    n_data = math.prod(len(p.grid() or [0]) for p in data_params) * math.prod(
        len(v) for k, v in spec.repeats.items() if k.startswith("data.")
    )
    if n_data > MAX_DATA_VARIANTS:
        rep.add(
            "space", f"{n_data} distinct data configs; at most {MAX_DATA_VARIANTS} are prepared per sweep"
        )


def _context(spec: SweepSpec, p: Param) -> dict[str, Any]:
    """Values of earlier keys that make `p` active: what each of its conditions' keys needs to be active itself,
    then the first allowed value of each of `p`'s own conditions (which win over what an earlier key needs: a
    key conditioned on the method and on the prior is checked with its own method, not the prior's first)."""
    forced: dict[str, Any] = {}
    params = spec.params
    own = {k: allowed for k, allowed in p.when.items() if k in params}
    for k in own:
        forced.update(_context(spec, params[k]))
    forced.update({k: allowed[0] for k, allowed in own.items()})
    return forced


def _samples(spec: SweepSpec, rep: Reporter) -> list[tuple[dict[str, Any], str, str | None]]:
    """(assignment, how to show it, the line key of the value tried) for every sample worth building."""
    out: list[tuple[dict[str, Any], str, str | None]] = [(spec.resolve({}), "", None)]
    for p in spec.space:
        ctx = _context(spec, p)
        for value, sub in p.edges():
            forced = {**ctx, p.key: value}
            chosen = spec.resolve(forced)
            if p.key not in chosen:
                rep.add(f"space.{p.key}.when", "never active")
                break
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in forced.items())
            out.append((chosen, shown, f"space.{p.key}.{sub}"))
    return out


def _check_samples(spec: SweepSpec, rep: Reporter) -> None:
    seen: set[tuple[str, str]] = set()
    undefined_for: set[tuple[str, str]] = set()  # (objective, method) reported once, with its first sample
    takers = {n: set(registry.get(n).Params.__dataclass_fields__) for n in registry.names()}

    def add(key: str, message: str, line: int | None, suffix: str = "") -> None:
        """One issue per key and message, shown with the first sample that raised it."""
        if (key, message) not in seen:
            seen.add((key, message))
            rep.issues.append(Issue(spec.path, key, message + suffix, line))

    for assignment, shown, line_key in _samples(spec, rep):
        sampled = f" (sampled {shown})" if shown else ""
        try:
            spec.method_rates(assignment)  # the method's own config must build before its units can be known
            units = spec.units(assignment)
        except ConfigError as e:
            _report(spec, rep, e, assignment, {}, line_key, sampled, takers, add)
            continue
        built = True
        for unit in units:
            try:
                config_from_dict(spec.trial_config(assignment, unit), spec.path)
            except ConfigError as e:
                built = False
                where = f" (repeat {_fmt(unit.repeat)})" if unit.repeat and not shown else sampled
                _report(spec, rep, e, assignment, unit.repeat, line_key, where, takers, add)
        if not built:
            continue
        trained = spec.trained_at(assignment)
        method = assignment.get("method.name", spec.base_value("method.name"))
        for obj in spec.objectives:
            why = undefined(obj, trained, spec.targets)
            if why and (obj.metric, method) not in undefined_for:
                undefined_for.add((obj.metric, method))
                add(
                    "sweep.objectives",
                    f"{obj.metric} is undefined for {method}: {why}{sampled}",
                    rep.line_of("sweep.objectives"),
                )


def _report(spec, rep, error, assignment, repeat, line_key, suffix, takers, add) -> None:
    for issue in error.issues:
        key, line = _locate(spec, rep, issue.key, assignment, repeat, line_key)
        message = issue.message + _method_hint(issue, spec, takers)
        add(key, message, line, suffix)


def _locate(
    spec: SweepSpec,
    rep: Reporter,
    key: str,
    chosen: dict[str, Any],
    repeat: dict[str, Any],
    line_key: str | None,
) -> tuple[str, int | None]:
    """Where in the sweep file a run-config issue comes from: a space entry, a repeat, or base."""
    for k in chosen:
        if key == k or key.startswith(k + "."):
            sub = line_key if line_key and line_key.startswith(f"space.{k}.") else None
            return f"space.{k}", rep.lines.get(sub or "") or rep.line_of(f"space.{k}")
    for k in repeat:
        if key == k or key.startswith(k + "."):
            where = (
                "sweep.seeds" if k == "train.seed" and "seeds" in spec.raw["sweep"] else f"sweep.repeats.{k}"
            )
            return where, rep.line_of(where)
    if key == "method.rate" and spec.targets:
        return "sweep.target_rates", rep.line_of("sweep.target_rates")
    where = f"base.{key}" if key else "base"
    return where, rep.line_of(where)


def _method_hint(issue: Issue, spec: SweepSpec, takers: dict[str, set[str]]) -> str:
    if not issue.message.startswith("unknown key") or not issue.key.startswith("method."):
        return ""
    name = issue.key.split(".", 1)[1]
    who = sorted(m for m, keys in takers.items() if name in keys)
    if not who or issue.key not in spec.params:
        return ""
    return f"; only {', '.join(who)} take it: add `when: {{method.name: [{', '.join(who)}]}}`"


def _check_searcher(spec: SweepSpec, rep: Reporter) -> None:
    trials = spec.section.trials
    if spec.searcher == "grid":
        no_grid = [p.key for p in spec.space if p.grid() is None]
        for k in no_grid:
            rep.add(f"space.{k}", "a grid needs categorical or int keys, or a float with `step`")
        if no_grid:
            return
        n = len(spec.grid_points(limit=MAX_GRID))
        if n > MAX_GRID:
            rep.add("space", f"the grid has more than {MAX_GRID} points")
        elif trials is not None and trials != n:
            rep.add("sweep.trials", f"the grid has {n} points: remove `trials` or set it to {n}")
        spec.trials = n
    else:
        spec.trials = trials or 8
