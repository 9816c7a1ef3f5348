"""A validated sweep file (`SweepSpec`) and `load_sweep`, which builds one or reports every problem at once.

A sweep file has three sections: `sweep` (how to search: `mrmp.sweep.schema`), `base` (a run config: the core's
keys) and `space` (dotted run-config keys -> distributions: `mrmp.sweep.space`). `mrmp.sweep.checks` proves
before anything runs that every sample is a run config `mrmp train` accepts and that every objective is defined
for every method the space can sample. See docs/sweeps.md.

Pure Python over the core config: importing this module never imports Ray, Optuna or MLflow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrmp.config import RunConfig, config_from_dict
from mrmp.methods import registry
from mrmp.tracking import TrackerSpec
from mrmp.validation import (
    ConfigError,
    Issue,
    Reporter,
    apply_overrides,
    build,
    parse_overrides,
    read_yaml,
    suggest,
)

from .cluster import check_gpu, is_uri, split_location, storage_uri
from .objectives import Objective, metric_problem, trained_at
from .schema import SECTIONS, TOP_LEVEL, SweepSection
from .space import Param, parse_param

OPTUNA_DB = "optuna.db"  # the study's default store, in the sweep folder
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# What a resumed sweep may change: how many trials, how fast, with what retries. Everything else defines what is
# searched and how it is scored, and a resumed sweep must keep it (the fingerprint).
GROWABLE = (
    "trials",
    "concurrency",
    "resources",
    "max_failures",
    "retry_on",
    "keep_checkpoints",
    "checkpoint_every",
)


@dataclass(frozen=True)
class Unit:
    """One training of a trial: a repeat (seeds, folds) and, for a single-rate method in a sweep with target
    rates, the target it trains for."""

    index: int
    repeat: dict[str, Any]
    target: float | None = None

    @property
    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.repeat.items()]
        if self.target is not None:
            parts.append(f"rate={self.target:g}")
        return ", ".join(parts) or "single"


@dataclass
class SweepSpec:
    """A validated sweep file. Paths are absolute; `raw` is the file's content after `--set` overrides."""

    path: str
    name: str
    section: SweepSection
    objectives: list[Objective]
    repeats: dict[str, list[Any]]  # dotted key -> values; a trial trains every combination
    trials: int
    root: Path
    optuna_url: str
    tune_location: str  # the folder of Tune's experiments: an absolute path or a URI (s3://, gs://)
    tracking: TrackerSpec
    base: dict[str, Any]
    space: list[Param]
    raw: dict[str, Any]
    overrides: list[str] = field(default_factory=list)  # the --set values applied to the file

    # --- the sweep section, flattened for readers -----------------------------------------------------------
    @property
    def concurrency(self) -> int:
        return self.section.concurrency

    @property
    def searcher(self) -> str:
        return self.section.searcher

    @property
    def seed(self) -> int:
        return self.section.seed

    @property
    def cpu(self) -> float:
        return self.section.resources.cpu

    @property
    def gpu(self) -> float:
        return self.section.resources.gpu

    @property
    def targets(self) -> list[float] | None:
        return self.section.target_rates

    @property
    def report_every(self) -> int:
        return self.section.report_every

    @property
    def scheduler(self) -> dict[str, Any] | None:
        """ASHA's settings, or None."""
        s = self.section.scheduler
        if s.name == "none":
            return None
        return {
            "grace_period": s.grace_period or self.report_every,
            "reduction_factor": s.reduction_factor,
            "max_t": s.max_t,
        }

    @property
    def ref(self) -> str:
        """How to name this sweep to export/report/ui: the file, unless --set moved or renamed it."""
        return self.path if not self.overrides else str(self.dir)

    @property
    def dir(self) -> Path:
        """Everything this sweep writes: sweep.json, sweep.yaml, optuna.db, mlflow.db, artifacts/, tune/."""
        return self.root / self.name

    @property
    def params(self) -> dict[str, Param]:
        return {p.key: p for p in self.space}

    def fingerprint(self) -> str:
        """Identifies what the sweep searches and how it scores: `--resume` refuses a changed one. The trial
        count and the resources may change (a sweep can be grown)."""
        raw = json.loads(json.dumps(self.raw, default=str))
        for key in GROWABLE:
            raw["sweep"].pop(key, None)
        for key in ("name", "storage", "tracking"):  # where it lives: the folder already pins them
            raw["sweep"].pop(key, None)
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]

    # --- samples -> configs ---------------------------------------------------------------------------------
    def repeat_list(self) -> list[dict[str, Any]]:
        """Every combination of the repeat values ([{}] without repeats)."""
        keys = list(self.repeats)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.repeats[k] for k in keys))]

    def base_value(self, key: str) -> Any:
        """A key's value in `base`, else the run config's default."""
        node: Any = self.base
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return _default_value(key)
            node = node[part]
        return node

    def active(self, param: Param, assignment: dict[str, Any]) -> bool:
        """Whether `param` applies, given the values chosen so far (`when` conditions)."""
        keys = self.params
        for k, allowed in param.when.items():
            if k in keys:
                if k not in assignment or assignment[k] not in allowed:
                    return False
            elif self.base_value(k) not in allowed:
                return False
        return True

    def define_by_run(self, trial: Any) -> dict[str, Any]:
        """Optuna define-by-run: suggest each active parameter in file order; returns the stored labels."""
        chosen: dict[str, Any] = {}
        labels: dict[str, Any] = {}
        for p in self.space:
            if self.active(p, chosen):
                labels[p.key] = p.suggest(trial)
                chosen[p.key] = p.decode(labels[p.key])
        return labels

    def decode(self, sample: dict[str, Any]) -> dict[str, Any]:
        """A searcher's sample (parameter -> stored label) -> the assignment (dotted key -> config value)."""
        params = self.params
        return {k: params[k].decode(v) for k, v in sample.items() if k in params}

    def label(self, assignment: dict[str, Any]) -> dict[str, Any]:
        """The inverse of `decode`."""
        params = self.params
        return {k: params[k].label(v) for k, v in assignment.items()}

    def resolve(self, forced: dict[str, Any]) -> dict[str, Any]:
        """An assignment with `forced` values and the first value of every other active parameter."""
        chosen: dict[str, Any] = {}
        for p in self.space:
            if self.active(p, chosen):
                chosen[p.key] = forced[p.key] if p.key in forced else p.edges()[0][0]
        return chosen

    def grid_points(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Every assignment of a grid sweep (inactive keys left out, so no duplicates); stops past `limit`."""
        points: list[dict[str, Any]] = [{}]
        for p in self.space:
            values = p.grid() or []
            grown: list[dict[str, Any]] = []
            for a in points:
                grown.extend([{**a, p.key: v} for v in values] if self.active(p, a) else [a])
            points = grown
            if limit is not None and len(points) > limit:
                break
        return points

    def method_rates(self, assignment: dict[str, Any]) -> tuple[tuple[float, ...] | None, bool]:
        """(trained rates of the sample's method by its own config, whether it has a `rate` key the targets
        set). Rates None: one network read at any rate."""
        raw = apply_overrides(self.base, assignment)
        cfg = config_from_dict(raw, self.path)
        method = registry.get(cfg.method.name)
        settable = any(f.name == "rate" for f in dataclasses.fields(method.Params))
        return method.trained_rates(cfg.method.params), settable

    def units(self, assignment: dict[str, Any]) -> list[Unit]:
        """The trainings of a sample: every repeat, times every target rate for a single-rate method (with a
        `rate` key) when the sweep names target rates."""
        trained, settable = self.method_rates(assignment)
        per_target = trained is not None and settable and bool(self.targets)
        targets: list[float | None] = list(self.targets) if per_target else [None]
        combos = itertools.product(self.repeat_list(), targets)
        return [Unit(i, r, t) for i, (r, t) in enumerate(combos)]

    def trained_at(self, assignment: dict[str, Any]) -> tuple[float, ...] | None:
        """The rates the sample's networks are trained for in this sweep (None: read at any rate)."""
        trained, settable = self.method_rates(assignment)
        return trained_at(trained, settable, self.targets)

    def trial_config(self, assignment: dict[str, Any], unit: Unit | None = None) -> dict[str, Any]:
        """The raw run config of one training: base, the sampled keys, the unit's repeat keys and target rate.

        `train.threads: 0` (torch's default) becomes the trial's CPU count, so the recorded config is the one
        that ran and `mrmp train` reproduces it; the target and objective rates join `eval.rates`."""
        sets = {**assignment, **(unit.repeat if unit else {})}
        if unit is not None and unit.target is not None:
            sets["method.rate"] = unit.target
        raw = apply_overrides(self.base, sets)
        if not _get(raw, "train.threads"):
            raw = apply_overrides(raw, {"train.threads": max(1, int(self.cpu))})
        extra = [*(self.targets or []), *(o.rate for o in self.objectives if o.rate is not None)]
        if extra:
            rates = _get(raw, "eval.rates") or _default_value("eval.rates")
            raw = apply_overrides(raw, {"eval.rates": sorted({round(float(r), 9) for r in [*rates, *extra]})})
        return raw

    def configs(self, assignment: dict[str, Any], source: str | None = None) -> list[tuple[Unit, RunConfig]]:
        """Each unit of a sample with its validated run config."""
        src = source or self.path
        return [(u, config_from_dict(self.trial_config(assignment, u), src)) for u in self.units(assignment)]

    def data_configs(self) -> dict[str, Any]:
        """Every distinct `data` section a trial can use: data_key -> DataConfig (each prepared once)."""
        keys = [p for p in self.space if p.key.startswith("data.")]
        rep_keys = [k for k in self.repeats if k.startswith("data.")]
        values = [p.grid() or [p.edges()[0][0]] for p in keys] + [self.repeats[k] for k in rep_keys]
        names = [p.key for p in keys] + rep_keys
        out: dict[str, Any] = {}
        for combo in itertools.product(*values):
            forced = dict(zip(names, combo))
            assignment = self.resolve({k: v for k, v in forced.items() if k in self.params})
            repeat = {k: v for k, v in forced.items() if k in self.repeats}
            cfg = config_from_dict(self.trial_config(assignment, Unit(0, repeat)), self.path)
            out.setdefault(data_key(cfg.data), cfg.data)
        return out


def default_optuna_url(sweep_dir: Path) -> str:
    """The study's store when `sweep.storage.optuna` names none: a sqlite file in the sweep folder."""
    return f"sqlite:///{sweep_dir / OPTUNA_DB}"


def data_key(data_cfg: Any) -> str:
    """Identity of a prepared dataset: its data section."""
    return json.dumps(dataclasses.asdict(data_cfg), sort_keys=True)


def _get(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


_DEFAULTS: dict[str, Any] | None = None


def _default_value(key: str) -> Any:
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = config_from_dict({}).to_dict()
    return _get(_DEFAULTS, key)


# --- loading -------------------------------------------------------------------------------------------------
def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Parse and validate a sweep file; raise ConfigError with every problem (file, line, key).

    `overrides` are `KEY=VALUE` strings: `sweep.*` keys change the sweep section (e.g. sweep.trials=4), any
    other key changes the base run config (e.g. data.root=/data/SBU); a key the space searches is refused."""
    from .checks import check_spec

    path = str(path)
    raw, lines = read_yaml(path)
    sets, bad = parse_overrides(overrides)
    if bad:
        raise ConfigError(bad)
    rep = Reporter(path, lines)
    if not isinstance(raw, dict):
        rep.add("", f"a sweep file is a mapping with `sweep`, `base` and `space`, got {type(raw).__name__}")
        raise ConfigError(rep.issues)
    raw = dict(raw)
    for key in raw:
        if key not in TOP_LEVEL:
            rep.add(
                str(key), f"unknown section{suggest(str(key), TOP_LEVEL)}; sections: {', '.join(TOP_LEVEL)}"
            )
    for name in TOP_LEVEL:
        if raw.get(name) is None:
            raw[name] = {}
        elif not isinstance(raw[name], dict):
            rep.add(name, f"must be a mapping, got {type(raw[name]).__name__}")
            raw[name] = {}
    searched = set(map(str, raw["space"]))
    for k in sets:
        if k in searched:
            rep.issues.append(
                Issue(
                    "--set", k, f"is searched (space.{k}): --set cannot fix it; remove it from `space` first"
                )
            )
    sweep_sets = {k[len("sweep.") :]: v for k, v in sets.items() if k.startswith("sweep.")}
    base_sets = {k: v for k, v in sets.items() if not k.startswith("sweep.") and k not in searched}
    raw["sweep"] = apply_overrides(raw["sweep"], sweep_sets)
    raw["base"] = apply_overrides(raw["base"], base_sets)
    for k in sets:
        lines.pop(k, None)
        lines.pop(f"base.{k}", None)
    rep.lines = lines

    s = build(SweepSection, raw["sweep"], "sweep", rep)
    name = s.name if s.name is not None else Path(path).stem
    if not _NAME_RE.match(name):
        rep.add("sweep.name", f"{name!r}: use letters, digits, '_', '-' and '.' (it names folders and runs)")
    if problem := check_gpu(s.resources.gpu):
        rep.add("sweep.resources.gpu", problem)
    if is_uri(s.storage.root):
        rep.add(
            "sweep.storage.root",
            f"{s.storage.root!r}: the sweep's own files (sweep.json, the sqlite stores) need a path; "
            "put Tune's checkpoints on object storage with sweep.storage.tune instead",
        )
    if s.storage.tune and is_uri(s.storage.tune) and not all(split_location(storage_uri(s.storage.tune))):
        rep.add(
            "sweep.storage.tune",
            f"{s.storage.tune!r}: name a folder below the bucket, e.g. s3://bucket/mrmp/x",
        )
    objectives = _objectives(s, rep)
    repeats = _repeats(s, rep)
    space = [p for k, v in raw["space"].items() if (p := parse_param(str(k), v, f"space.{k}", SECTIONS, rep))]
    if rep.issues:  # the sections themselves are unusable: sampling configs from them would only add noise
        raise ConfigError(_from_set(rep.issues, sets))

    root = Path(s.storage.root).expanduser().resolve()
    sweep_dir = root / name
    spec_ = SweepSpec(
        path=path,
        name=name,
        section=s,
        objectives=objectives,
        repeats=repeats,
        trials=s.trials or 0,
        root=root,
        optuna_url=s.storage.optuna or default_optuna_url(sweep_dir),
        tune_location=storage_uri(s.storage.tune) if s.storage.tune else str(sweep_dir / "tune"),
        tracking=_tracker_spec(s, sweep_dir, name, rep),
        base=raw["base"],
        space=space,
        raw=raw,
        overrides=list(overrides or []),
    )
    check_spec(spec_, rep)
    if rep.issues:
        raise ConfigError(_from_set(rep.issues, sets))
    return spec_


def _from_set(issues: list[Issue], sets: dict[str, Any]) -> list[Issue]:
    """Issues about keys given with --set point at --set, not at the file."""

    def hit(key: str) -> bool:
        bare = key.removeprefix("base.")
        return any(bare == k or bare.startswith(k + ".") or key == k for k in sets)

    return [
        Issue("--set", i.key, i.message) if i.key and i.file != "--set" and hit(i.key) else i for i in issues
    ]


def _objectives(s: SweepSection, rep: Reporter) -> list[Objective]:
    out = []
    for i, o in enumerate(s.objectives):
        key = f"sweep.objectives[{i}]" if len(s.objectives) > 1 else "sweep.objectives"
        if problem := metric_problem(o.metric):
            rep.add(key, problem)
            continue
        out.append(Objective(o.metric, o.mode))
    if not s.objectives:
        rep.add("sweep.objectives", "name at least one, e.g. [acc@targets]")
    if len({o.key for o in out}) != len(out):
        rep.add("sweep.objectives", "each metric may appear once")
    return out


def _repeats(s: SweepSection, rep: Reporter) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for k, v in (s.repeats or {}).items():
        if not v:
            rep.add(f"sweep.repeats.{k}", "expected a non-empty list of values")
        elif "." not in k or k.split(".")[0] not in SECTIONS:
            rep.add(f"sweep.repeats.{k}", f"expected a run-config key section.key ({', '.join(SECTIONS)})")
        else:
            out[k] = list(v)
    if s.seeds is not None:
        if not s.seeds:
            rep.add("sweep.seeds", "expected a non-empty list of seeds")
        elif "train.seed" in out:
            rep.add("sweep.seeds", "`seeds` is `repeats: {train.seed: [...]}`: give one of them")
        else:
            out["train.seed"] = list(s.seeds)
    return out


def _tracker_spec(s: SweepSection, sweep_dir: Path, name: str, rep: Reporter) -> TrackerSpec:
    trk = s.tracking
    experiment = trk.experiment or name
    if trk.backend == "local":
        return TrackerSpec(
            "local", str(Path(trk.uri).resolve()) if trk.uri else str(sweep_dir / "tracking"), experiment
        )
    if trk.backend == "none":
        return TrackerSpec("none", None, experiment)
    if trk.uri is None:
        d = sweep_dir.resolve()
        return TrackerSpec("mlflow", f"sqlite:///{d / 'mlflow.db'}", experiment, (d / "artifacts").as_uri())
    uri = trk.uri
    if "://" not in uri and not uri.startswith("sqlite:"):
        rep.add(
            "sweep.tracking.uri",
            f"{uri!r}: expected a URI such as http://host:5000 or sqlite:////abs/mlflow.db",
        )
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri[len('sqlite:///') :]).resolve()}"  # relative path: absolute, for every process
    return TrackerSpec("mlflow", uri, experiment, None)
