"""Sweep files: parse, validate (every problem at once, naming file, line and key), and turn samples into configs.

A sweep file has three sections: `sweep` (how to search), `base` (a run config: the core's keys) and `space`
(dotted run-config keys -> a typed distribution). Every sampled config is a run config that `mrmp train` accepts;
validation proves it by building, through the core's `config_from_dict`, the base with each categorical choice
and each range endpoint (and each repeat). See docs/sweeps.md for the reference.

Pure Python over the core config: importing this module never imports Ray, Optuna or MLflow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrmp.config import (
    ConfigError,
    Issue,
    Reporter,
    apply_overrides,
    config_from_dict,
    parse_overrides,
    read_yaml,
    spec,
)
from mrmp.tracking import BACKENDS, TrackerSpec
from mrmp.validation import build, suggest

from .cluster import check_gpu, is_uri, split_location, storage_uri

SEARCHERS = ("tpe", "nsga2", "random", "grid")
RETRY_KINDS = ("error", "nonfinite")  # what a failed trial may be retried for (lost processes always are)
CURVE_METRICS = ("auc", "mean", "mean_seen", "mean_unseen", "worst_unseen", "dense")
PARAM_TYPES = ("float", "int", "categorical")
TOP_LEVEL = ("sweep", "base", "space")
SECTIONS = ("data", "model", "method", "train", "eval")
MAX_GRID = 10_000
MAX_DATA_VARIANTS = 64
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SCALARS = (str, int, float, bool, type(None))


# --- raw sections (validated with the core's `build`: types, bounds, choices, did-you-mean) ------------------
@dataclass
class _SweepSection:
    name: str | None = field(default=None, metadata=spec(help="sweep name (default: the file's stem)"))
    trials: int | None = field(default=None, metadata=spec(ge=1, help="trials (grid: the grid's size)"))
    concurrency: int = field(default=2, metadata=spec(ge=1, help="trials running at once"))
    searcher: str = field(default="tpe", metadata=spec(choices=SEARCHERS))
    seed: int = field(default=0, metadata=spec(help="searcher seed"))
    scheduler: Any = "none"
    objectives: Any = None
    resources: Any = None
    seeds: list[int] | None = None
    repeats: Any = None
    report_every: int = field(default=10, metadata=spec(ge=1, help="epochs between objective evaluations"))
    max_failures: int = field(default=1, metadata=spec(ge=0, help="retries of a failed trial"))
    retry_on: list[str] = field(
        default_factory=lambda: ["error"],
        metadata=spec(choices=RETRY_KINDS, help="failures worth a retry: error, nonfinite (a NaN/inf loss)"),
    )
    keep_checkpoints: int = field(default=2, metadata=spec(ge=1))
    storage: Any = None
    tracking: Any = None


@dataclass
class _Resources:
    cpu: float = field(default=1.0, metadata=spec(gt=0))
    gpu: float = field(default=0.0, metadata=spec(ge=0))


@dataclass
class _Storage:
    root: str = "runs/sweeps"
    optuna: str | None = None
    tune: str | None = (
        None  # the Tune experiment folder: a path or a URI (s3://...); default <root>/<name>/tune
    )


@dataclass
class _Tracking:
    backend: str = field(default="mlflow", metadata=spec(choices=BACKENDS))
    uri: str | None = None
    experiment: str | None = None


@dataclass
class _Scheduler:
    name: str = field(default="asha", metadata=spec(choices=("asha", "none")))
    grace_period: int | None = field(default=None, metadata=spec(ge=1))
    reduction_factor: float = field(default=2.0, metadata=spec(gt=1))
    max_t: int | None = field(default=None, metadata=spec(ge=1))


@dataclass
class _Objective:
    metric: str = ""
    mode: str = field(default="max", metadata=spec(choices=("max", "min")))


@dataclass
class _Param:
    type: str | None = field(default=None, metadata=spec(choices=PARAM_TYPES))
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None
    when: Any = None


# --- resolved pieces -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Objective:
    """What a trial is scored by: a curve metric (see `mrmp.sweep.objectives`) and a direction."""

    metric: str  # as written: auc, mean_unseen, acc@0.9, acc@target, ...
    mode: str = "max"

    @property
    def key(self) -> str:
        """The name in Tune results and MLflow metrics (MLflow forbids '@')."""
        return self.metric.replace("@", "_at_")

    @property
    def rate(self) -> float | None:
        """The rate of an `acc@R` objective."""
        tail = self.metric.partition("@")[2]
        return float(tail) if tail and tail != "target" else None


@dataclass
class Param:
    """One search-space entry: a dotted run-config key and its distribution."""

    key: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: list[Any] = field(default_factory=list)
    when: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def _labelled(self) -> bool:
        return any(not isinstance(c, _SCALARS) for c in self.choices)

    def label(self, value: Any) -> Any:
        """Optuna stores scalars only: a choice that is a list (a seen-rate set) is stored as its JSON text."""
        return json.dumps(value) if self.type == "categorical" and self._labelled else value

    def labels(self) -> list[Any]:
        return [self.label(c) for c in self.choices]

    def decode(self, stored: Any) -> Any:
        """The value a searcher returned -> the config value."""
        if self.type == "categorical":
            for c in self.choices:
                if self.label(c) == stored:
                    return c
            raise ValueError(f"{self.key}: {stored!r} is not one of the choices")
        return int(stored) if self.type == "int" else float(stored)

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial (define-by-run) for this parameter."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, self.labels())
        if self.type == "int":
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def first(self) -> Any:
        return self.choices[0] if self.type == "categorical" else self.low

    def _at_step(self, i: int) -> Any:
        v = self.low + i * self.step
        return int(v) if self.type == "int" else round(v, 12)

    def _steps(self) -> int:
        """How many steps fit between low and high."""
        return math.floor((self.high - self.low) / self.step + 1e-9)

    def top(self) -> Any:
        """The highest value a searcher can return (the high end, aligned to the step)."""
        return self._at_step(self._steps()) if self.step and self.type != "categorical" else self.high

    def edges(self) -> list[tuple[Any, str]]:
        """(value, sub-key for the line) to validate: every choice, or both ends of a range."""
        if self.type == "categorical":
            return [(c, "choices") for c in self.choices]
        return [(self.low, "low"), (self.top(), "high")]

    def grid(self) -> list[Any] | None:
        """Every value of the parameter, or None when it has no finite grid (a float without a step)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step:
            return [self._at_step(i) for i in range(self._steps() + 1)]
        return None


@dataclass
class SweepSpec:
    """A validated sweep file. Paths are absolute; `raw` is the file's content after `--set` overrides."""

    path: str
    name: str
    trials: int
    concurrency: int
    searcher: str
    seed: int
    scheduler: dict[str, Any] | None  # None, or ASHA's settings
    objectives: list[Objective]
    cpu: float
    gpu: float
    repeats: dict[str, list[Any]]  # dotted key -> values; a trial trains every combination, reports the mean
    report_every: int
    max_failures: int
    keep_checkpoints: int
    root: Path
    optuna_url: str
    tracking: TrackerSpec
    base: dict[str, Any]
    space: list[Param]
    raw: dict[str, Any]
    overrides: list[str] = field(default_factory=list)  # the --set values applied to the file
    tune_location: str = ""  # the Tune experiment folder: an absolute path or a URI (s3://, gs://)
    retry_on: list[str] = field(
        default_factory=lambda: ["error"]
    )  # RETRY_KINDS a failed trial is retried for

    @property
    def ref(self) -> str:
        """How to name this sweep to export/report/ui: the file, unless --set moved or renamed it."""
        return self.path if not self.overrides else str(self.dir)

    @property
    def dir(self) -> Path:
        """Everything this sweep writes: tune/, optuna.db, mlflow.db, artifacts/, sweep.yaml, sweep.json."""
        return self.root / self.name

    @property
    def params(self) -> dict[str, Param]:
        return {p.key: p for p in self.space}

    def fingerprint(self) -> str:
        """Identifies what the sweep searches (its resolved file content): `--resume` refuses a changed file."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()[:12]

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

    def define_by_run(self, trial: Any) -> None:
        """Optuna define-by-run space: suggests each active parameter in file order."""
        chosen: dict[str, Any] = {}
        for p in self.space:
            if self.active(p, chosen):
                chosen[p.key] = p.decode(p.suggest(trial))

    def decode(self, sample: dict[str, Any]) -> dict[str, Any]:
        """A searcher's sample (parameter -> stored value) -> the assignment (dotted key -> config value)."""
        params = self.params
        return {k: params[k].decode(v) for k, v in sample.items() if k in params}

    def trial_config(
        self, assignment: dict[str, Any], repeat: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The raw run config of a sample: base, then the sampled keys, then one repeat's keys.

        `train.threads: 0` (torch's default) becomes the trial's CPU count, so the recorded config is the one
        that ran and `mrmp train` reproduces it exactly."""
        raw = apply_overrides(self.base, {**assignment, **(repeat or {})})
        if not _get(raw, "train.threads"):
            raw = apply_overrides(raw, {"train.threads": max(1, int(self.cpu))})
        return raw

    def resolve(self, forced: dict[str, Any]) -> dict[str, Any]:
        """An assignment with `forced` values and the first value of every other active parameter."""
        chosen: dict[str, Any] = {}
        for p in self.space:
            if self.active(p, chosen):
                chosen[p.key] = forced[p.key] if p.key in forced else p.first()
        return chosen

    def grid_points(self) -> list[dict[str, Any]]:
        """Every assignment of a grid sweep (inactive keys left out, so no duplicates)."""
        points: list[dict[str, Any]] = [{}]
        for p in self.space:
            values = p.grid() or []
            grown: list[dict[str, Any]] = []
            for a in points:
                grown.extend([{**a, p.key: v} for v in values] if self.active(p, a) else [a])
            points = grown
            if len(points) > MAX_GRID:
                break
        return points

    def data_configs(self) -> dict[str, Any]:
        """Every distinct `data` section a trial can use: data_key -> DataConfig (each prepared once)."""
        keys = [p for p in self.space if p.key.startswith("data.")]
        rep_keys = [k for k in self.repeats if k.startswith("data.")]
        values = [p.grid() or [p.first()] for p in keys] + [self.repeats[k] for k in rep_keys]
        names = [p.key for p in keys] + rep_keys
        out: dict[str, Any] = {}
        for combo in itertools.product(*values):
            forced = dict(zip(names, combo))
            assignment = self.resolve({k: v for k, v in forced.items() if k in self.params})
            repeat = {k: v for k, v in forced.items() if k in self.repeats}
            cfg = config_from_dict(self.trial_config(assignment, repeat), self.path)
            out.setdefault(data_key(cfg.data), cfg.data)
        return out


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


def _fmt(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


# --- loading and validation ----------------------------------------------------------------------------------
def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Parse and validate a sweep file; raise ConfigError with every problem (file, line, key).

    `overrides` are `KEY=VALUE` strings: `sweep.*` keys change the sweep section (e.g. sweep.trials=4), any
    other key changes the base run config (e.g. data.root=/data/SBU)."""
    path = str(path)
    raw, lines = read_yaml(path)
    sets, bad = parse_overrides(overrides)
    if bad:
        raise ConfigError(bad)
    rep = Reporter(path, lines)
    if not isinstance(raw, dict):
        rep.add("", "a sweep file is a mapping with `sweep`, `base` and `space`")
        raise ConfigError(rep.issues)
    raw = dict(raw)
    for key in raw:
        if key not in TOP_LEVEL:
            rep.add(
                str(key), f"unknown section{suggest(str(key), TOP_LEVEL)}; sections: {', '.join(TOP_LEVEL)}"
            )
    if not isinstance(raw.get("sweep"), dict):
        rep.add("sweep", "must be a mapping (name, trials, searcher, objectives, ...)")
        raw["sweep"] = {}
    for name in ("base", "space"):
        if raw.get(name) is None:
            raw[name] = {}
        elif not isinstance(raw[name], dict):
            rep.add(name, f"must be a mapping, got {type(raw[name]).__name__}")
            raw[name] = {}
    sweep_sets = {k[len("sweep.") :]: v for k, v in sets.items() if k.startswith("sweep.")}
    base_sets = {k: v for k, v in sets.items() if not k.startswith("sweep.")}
    raw["sweep"] = apply_overrides(raw["sweep"], sweep_sets)
    raw["base"] = apply_overrides(raw["base"], base_sets)
    for k in sets:
        lines.pop(k, None)
        lines.pop(f"base.{k}", None)
    rep.lines = lines

    s = build(_SweepSection, raw["sweep"], "sweep", rep)
    name = s.name if s.name is not None else Path(path).stem
    if not _NAME_RE.match(name):
        rep.add("sweep.name", f"{name!r}: use letters, digits, '_', '-' and '.' (it names folders and runs)")
    res = build(_Resources, raw["sweep"].get("resources"), "sweep.resources", rep)
    if problem := check_gpu(res.gpu):
        rep.add("sweep.resources.gpu", problem)
    store = build(_Storage, raw["sweep"].get("storage"), "sweep.storage", rep)
    if is_uri(store.root):
        rep.add(
            "sweep.storage.root",
            f"{store.root!r}: the sweep's own files (sweep.json, the sqlite stores) need a path; "
            "put Tune's checkpoints on object storage with sweep.storage.tune instead",
        )
    if store.tune and is_uri(store.tune) and not all(split_location(storage_uri(store.tune))):
        rep.add(
            "sweep.storage.tune",
            f"{store.tune!r}: name a folder below the bucket, e.g. s3://bucket/mrmp/name",
        )
    trk = build(_Tracking, raw["sweep"].get("tracking"), "sweep.tracking", rep)
    scheduler = _scheduler(s.scheduler, s.report_every, rep)
    objectives = _objectives(s.objectives, rep)
    repeats = _repeats(s, rep)
    space = _space(raw["space"], rep)
    if rep.issues:  # the space itself is unusable: sampling configs from it would only add noise
        raise ConfigError(_from_set(rep.issues, sets))

    root = Path(store.root).expanduser().resolve()
    sweep_dir = root / name
    tune_location = storage_uri(store.tune) if store.tune else str(sweep_dir / "tune")
    optuna_url = store.optuna or f"sqlite:///{sweep_dir / 'optuna.db'}"
    tracking = _tracker_spec(trk, sweep_dir, name, rep)
    spec_ = SweepSpec(
        path=path,
        name=name,
        trials=s.trials or 0,
        concurrency=s.concurrency,
        searcher=s.searcher,
        seed=s.seed,
        scheduler=scheduler,
        objectives=objectives,
        cpu=res.cpu,
        gpu=res.gpu,
        repeats=repeats,
        report_every=s.report_every,
        max_failures=s.max_failures,
        keep_checkpoints=s.keep_checkpoints,
        root=root,
        optuna_url=optuna_url,
        tracking=tracking,
        base=raw["base"],
        space=space,
        raw=raw,
        overrides=list(overrides or []),
        tune_location=tune_location,
        retry_on=list(s.retry_on),
    )
    _check_conditions(spec_, rep)
    if not rep.issues:
        _check_samples(spec_, rep)
        _check_searcher(spec_, s.trials, rep)
    if rep.issues:
        raise ConfigError(_from_set(rep.issues, sets))
    return spec_


def _from_set(issues: list[Issue], sets: dict[str, Any]) -> list[Issue]:
    """Issues about keys given with --set point at --set, not at the file."""

    def hit(key: str) -> bool:
        bare = key.removeprefix("base.")
        return any(bare == k or bare.startswith(k + ".") or key == k for k in sets)

    return [Issue("--set", i.key, i.message) if i.key and hit(i.key) else i for i in issues]


def _scheduler(raw: Any, report_every: int, rep: Reporter) -> dict[str, Any] | None:
    if raw is None or raw == "none":
        return None
    if raw == "asha":
        raw = {"name": "asha"}
    if not isinstance(raw, dict):
        rep.add("sweep.scheduler", "expected `none`, `asha` or a mapping {name: asha, grace_period: ...}")
        return None
    sch = build(_Scheduler, raw, "sweep.scheduler", rep)
    if sch.name == "none":
        return None
    return {
        "grace_period": sch.grace_period or report_every,
        "reduction_factor": sch.reduction_factor,
        "max_t": sch.max_t,
    }


def _objectives(raw: Any, rep: Reporter) -> list[Objective]:
    if raw is None:
        raw = [{"metric": "auc", "mode": "max"}]
    if isinstance(raw, str | dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        rep.add("sweep.objectives", "expected a list such as [{metric: auc, mode: max}]")
        return []
    out = []
    for i, item in enumerate(raw):
        key = f"sweep.objectives[{i}]"
        if isinstance(item, str):
            item = {"metric": item}
        if not isinstance(item, dict):
            rep.add("sweep.objectives", f"{key}: expected {{metric: NAME, mode: max|min}}, got {item!r}")
            continue
        obj = build(_Objective, item, "sweep.objectives", rep)
        problem = metric_problem(obj.metric)
        if problem:
            rep.add("sweep.objectives", f"{key}: {problem}")
            continue
        out.append(Objective(obj.metric, obj.mode))
    if len({o.key for o in out}) != len(out):
        rep.add("sweep.objectives", "each metric may appear once")
    return out


def metric_problem(metric: str) -> str | None:
    if metric in CURVE_METRICS:
        return None
    head, at, tail = metric.partition("@")
    if head == "acc" and at:
        if tail == "target":
            return None
        try:
            r = float(tail)
        except ValueError:
            r = -1.0
        if 0.0 <= r < 1.0:
            return None
        return f"{metric!r}: the rate after '@' must be a number in [0, 1) or `target`"
    known = [*CURVE_METRICS, "acc@RATE", "acc@target"]
    return f"unknown metric {metric!r}{suggest(metric, known)}; choose one of: {', '.join(known)}"


def _repeats(s: _SweepSection, rep: Reporter) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    raw = s.repeats
    if raw is not None:
        if not isinstance(raw, dict):
            rep.add(
                "sweep.repeats", "expected a mapping of run-config keys to lists, e.g. {data.fold: [1, 2, 3]}"
            )
        else:
            for k, v in raw.items():
                if not isinstance(v, list) or not v:
                    rep.add(f"sweep.repeats.{k}", "expected a non-empty list of values")
                elif "." not in str(k) or str(k).split(".")[0] not in SECTIONS:
                    rep.add(
                        f"sweep.repeats.{k}", f"expected a run-config key section.key ({', '.join(SECTIONS)})"
                    )
                else:
                    out[str(k)] = list(v)
    if s.seeds is not None:
        if not s.seeds:
            rep.add("sweep.seeds", "expected a non-empty list of seeds")
        elif "train.seed" in out:
            rep.add("sweep.seeds", "`seeds` is `repeats: {train.seed: [...]}`: give one of them")
        else:
            out["train.seed"] = list(s.seeds)
    return out


def _space(raw: dict[str, Any], rep: Reporter) -> list[Param]:
    out: list[Param] = []
    for key, entry in raw.items():
        key = str(key)
        where = f"space.{key}"
        if "." not in key or key.split(".")[0] not in SECTIONS:
            rep.add(where, f"a search key is a dotted run-config key section.key ({', '.join(SECTIONS)})")
            continue
        if not isinstance(entry, dict):
            rep.add(where, "expected {type: float|int|categorical, ...}")
            continue
        p = build(_Param, entry, where, rep)
        if p.type is None:
            rep.add(where, "needs `type: float`, `type: int` or `type: categorical`")
            continue
        before = len(rep.issues)
        if p.type == "categorical":
            if not p.choices:
                rep.add(f"{where}.choices", "a categorical needs a non-empty list of choices")
            elif any(p.choices[i] == p.choices[j] for i in range(len(p.choices)) for j in range(i)):
                rep.add(f"{where}.choices", "choices must be distinct")
            for extra in ("low", "high", "step"):
                if entry.get(extra) is not None:
                    rep.add(f"{where}.{extra}", "only float and int ranges take low/high/step")
        else:
            if p.low is None or p.high is None:
                rep.add(where, f"a {p.type} range needs `low` and `high`")
            elif p.low > p.high:
                rep.add(f"{where}.low", f"low ({p.low}) must be <= high ({p.high})")
            if p.choices is not None:
                rep.add(
                    f"{where}.choices",
                    f"a {p.type} range takes low/high, not choices (use type: categorical)",
                )
            if p.log and p.low is not None and p.low <= 0:
                rep.add(f"{where}.low", "a log range needs low > 0")
            if p.log and p.step is not None:
                rep.add(f"{where}.step", "Optuna takes either `log: true` or `step`, not both")
            if p.step is not None and p.step <= 0:
                rep.add(f"{where}.step", "must be > 0")
            if p.type == "int":
                for sub in ("low", "high", "step"):
                    v = getattr(p, sub)
                    if v is not None and float(v) != int(v):
                        rep.add(f"{where}.{sub}", f"an int range needs integers, got {v}")
        when = _when(p.when, where, rep)
        if len(rep.issues) > before:
            continue
        as_int = p.type == "int"
        conv = (lambda v: None if v is None else int(v)) if as_int else (lambda v: v)
        out.append(
            Param(
                key=key,
                type=p.type,
                low=conv(p.low),
                high=conv(p.high),
                log=p.log,
                step=conv(p.step),
                choices=list(p.choices or []),
                when=when,
            )
        )
    return out


def _when(raw: Any, where: str, rep: Reporter) -> dict[str, list[Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        rep.add(f"{where}.when", "expected a mapping key -> allowed values, e.g. {method.name: [srmp, mrmp]}")
        return {}
    return {str(k): (v if isinstance(v, list) else [v]) for k, v in raw.items()}


def _check_conditions(spec_: SweepSpec, rep: Reporter) -> None:
    order = [p.key for p in spec_.space]
    params = spec_.params
    for p in spec_.space:
        for k, allowed in p.when.items():
            where = f"space.{p.key}.when"
            if k == p.key:
                rep.add(where, "a key cannot depend on itself")
            elif k in params:
                if order.index(k) > order.index(p.key):
                    rep.add(where, f"{k} must come before {p.key} in `space` (conditions read earlier keys)")
                elif params[k].type != "categorical":
                    rep.add(where, f"{k} is a {params[k].type} range: conditions need a categorical key")
                else:
                    missing = [a for a in allowed if a not in params[k].choices]
                    if missing:
                        rep.add(where, f"{_fmt(missing)} not among the choices of {k}")
            elif k.split(".")[0] not in SECTIONS or "." not in k:
                rep.add(where, f"{k}: expected a space key or a run-config key section.key")
            elif spec_.base_value(k) not in allowed:
                rep.add(where, f"never true: {k} is {spec_.base_value(k)!r} in base and not searched")
        if p.key in spec_.repeats:
            rep.add(f"space.{p.key}", "is also in sweep.repeats/seeds: search it or repeat it, not both")
    data_params = [p for p in spec_.space if p.key.startswith("data.")]
    for p in data_params:
        if p.grid() is None:
            rep.add(f"space.{p.key}", "data keys must be categorical or int: each dataset is prepared once")
    n_data = math.prod(len(p.grid() or [0]) for p in data_params) * math.prod(
        len(v) for k, v in spec_.repeats.items() if k.startswith("data.")
    )
    if n_data > MAX_DATA_VARIANTS:
        rep.add(
            "space", f"{n_data} distinct data configs; at most {MAX_DATA_VARIANTS} are prepared per sweep"
        )


def _context(spec_: SweepSpec, p: Param) -> dict[str, Any]:
    """Values of earlier keys that make `p` active (the first allowed value of each condition)."""
    forced: dict[str, Any] = {}
    params = spec_.params
    for k, allowed in p.when.items():
        if k in params:
            forced.update(_context(spec_, params[k]))
            forced[k] = allowed[0]
    return forced


def _check_samples(spec_: SweepSpec, rep: Reporter) -> None:
    """Build the base with each choice and range end (and each repeat) through the core's validation."""
    samples: list[tuple[dict[str, Any], dict[str, Any], str, str | None]] = []
    default = spec_.resolve({})
    for r in spec_.repeat_list():
        samples.append((default, r, "", None))
    for p in spec_.space:
        ctx = _context(spec_, p)
        for value, sub in p.edges():
            forced = {**ctx, p.key: value}
            chosen = spec_.resolve(forced)
            if p.key not in chosen:
                rep.add(f"space.{p.key}.when", "never active")
                break
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in forced.items())
            samples.append((chosen, {}, shown, f"space.{p.key}.{sub}"))
    seen: set[tuple[str, str]] = set()
    registered = _method_keys()
    for chosen, repeat, shown, line_key in samples:
        try:
            cfg = config_from_dict(spec_.trial_config(chosen, repeat), spec_.path)
        except ConfigError as e:
            for issue in e.issues:
                key, line = _locate(spec_, rep, issue.key, chosen, repeat, line_key)
                message = issue.message + _method_hint(issue, spec_, registered)
                if (key, message) in seen:
                    continue
                seen.add((key, message))
                suffix = f" (sampled {shown})" if shown else (f" (repeat {_fmt(repeat)})" if repeat else "")
                rep.issues.append(Issue(spec_.path, key, message + suffix, line))
            continue
        for obj in spec_.objectives:
            problem = None
            if obj.rate is not None and not any(abs(obj.rate - r) < 1e-9 for r in cfg.eval.rates):
                problem = f"{obj.metric}: rate {obj.rate} is not in eval.rates"
            elif obj.metric == "acc@target" and cfg.method.rate is None:
                problem = f"acc@target needs a method with a `rate` key; method {cfg.method.name} has none"
            if problem and ("sweep.objectives", problem) not in seen:
                seen.add(("sweep.objectives", problem))
                rep.add("sweep.objectives", problem + (f" (sampled {shown})" if shown else ""))


def _locate(
    spec_: SweepSpec,
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
                "sweep.seeds" if k == "train.seed" and "seeds" in spec_.raw["sweep"] else f"sweep.repeats.{k}"
            )
            return where, rep.line_of(where)
    where = f"base.{key}" if key else "base"
    return where, rep.line_of(where)


def _method_keys() -> dict[str, set[str]]:
    from mrmp.methods import registry

    return {n: {f.name for f in dataclasses.fields(registry.get(n).Params)} for n in registry.names()}


def _method_hint(issue: Issue, spec_: SweepSpec, registered: dict[str, set[str]]) -> str:
    if not issue.message.startswith("unknown key") or not issue.key.startswith("method."):
        return ""
    name = issue.key.split(".", 1)[1]
    takers = [m for m, keys in registered.items() if name in keys]
    if not takers or issue.key not in spec_.params:
        return ""
    return f"; only {', '.join(takers)} take it: add `when: {{method.name: [{', '.join(takers)}]}}`"


def _check_searcher(spec_: SweepSpec, trials: int | None, rep: Reporter) -> None:
    if spec_.searcher == "grid":
        no_grid = [p.key for p in spec_.space if p.grid() is None]
        for k in no_grid:
            rep.add(f"space.{k}", "a grid needs categorical or int keys, or a float with `step`")
        if no_grid:
            return
        bound = math.prod(len(p.grid() or []) for p in spec_.space)
        n = len(spec_.grid_points()) if bound <= 100 * MAX_GRID else bound
        if n > MAX_GRID:
            rep.add("space", f"the grid has more than {MAX_GRID} points")
        elif trials is not None and trials != n:
            rep.add("sweep.trials", f"the grid has {n} points: remove `trials` or set it to {n}")
        spec_.trials = n
    else:
        spec_.trials = trials or 8


def _tracker_spec(trk: _Tracking, sweep_dir: Path, name: str, rep: Reporter) -> TrackerSpec:
    from mrmp.tracking.mlflow_backend import local_store

    experiment = trk.experiment or name
    if trk.backend == "local":
        return TrackerSpec(
            "local", str(Path(trk.uri).resolve()) if trk.uri else str(sweep_dir / "tracking"), experiment
        )
    if trk.backend == "none":
        return TrackerSpec("none", None, experiment)
    if trk.uri is None:
        uri, artifacts = local_store(sweep_dir)
        return TrackerSpec("mlflow", uri, experiment, artifacts)
    uri = trk.uri
    if "://" not in uri and not uri.startswith("sqlite:"):
        rep.add(
            "sweep.tracking.uri",
            f"{uri!r}: expected a URI such as http://host:5000 or sqlite:////abs/mlflow.db",
        )
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri[len('sqlite:///') :]).resolve()}"  # relative path: absolute, for every process
    return TrackerSpec("mlflow", uri, experiment, None)
