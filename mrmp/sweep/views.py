"""What people read about a sweep: one-line descriptions of trials, the header of an exported config, the
per-rate CSV, the banner a sweep starts with, the parent run's params. Text only: no tracking, no Ray."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mrmp.stats import interval_text

from .objectives import RATE_MISS, RATE_OK
from .spec import SweepSpec


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def describe(
    method: str,
    assignment: Mapping[str, Any],
    scores: Mapping[str, float] | None = None,
    spec: SweepSpec | None = None,
) -> str:
    """One line for the run's description: the method, the sampled values, and the score once there is one."""
    values = ", ".join(
        f"{k.split('.', 1)[1]}={_short(v)}" for k, v in assignment.items() if k != "method.name"
    )
    line = f"{method}" + (f" · {values}" if values else "")
    if scores and spec is not None:
        line += " · " + describe_short(spec, scores)
    return line


def describe_short(spec: SweepSpec, scores: Mapping[str, float]) -> str:
    """`val acc@targets 81.2 ± 3.4 % (test 79.6)`: the first objective, its interval, the test score beside, and
    `· rate missed by 1.83 pts` when the trial missed a scored rate by more than `sweep.rate_tolerance`."""
    o = spec.objectives[0]
    mean = scores.get(o.key)
    if mean is None:
        return ""
    lo, hi = scores.get(f"{o.key}_ci95_lo"), scores.get(f"{o.key}_ci95_hi")
    test = scores.get(f"test_{o.name}")
    tail = f" (test {test * 100:.1f})" if test is not None else ""
    if scores.get(RATE_OK) == 0.0:
        tail += f" · rate missed by {scores[RATE_MISS] * 100:.2f} pts"
    return f"val {o.metric} {interval_text(mean, lo, hi)} %{tail}"


def train_command(
    spec_objectives: Sequence[Any], targets: Sequence[float] | None, path: str, out: str
) -> str:
    """The `mrmp train` command that re-runs an exported config and scores it as its trial was scored."""
    cmd = f"mrmp train {path} --out {out}"
    for o in spec_objectives:
        cmd += f" --objective {o.metric}"
    if targets:
        cmd += " --targets " + ",".join(f"{t:g}" for t in targets)
    return cmd


def config_header(spec: SweepSpec, number: int | None, run_id: str, scores: Mapping[str, float]) -> str:
    """The comment an exported config starts with: where it comes from, what it scored, how to re-run it."""
    lines = [
        f"# from sweep {spec.name}, trial {number if number is not None else '?'} (MLflow run {run_id})",
        f"# {describe_short(spec, scores)}",
        "# the first unit's config (repeat and target rate); re-run and score it:",
        "#   " + train_command(spec.objectives, spec.targets, "THIS_FILE", "runs/again"),
    ]
    return "\n".join(lines) + "\n"


def rates_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per-rate estimates over repeats: rate, seen, integrity columns, the largest |observed − asked| rate over
    the repeats (`rate_miss`), val and test mean/std/95 % interval."""
    head = ["rate", "seen", "observed_rate", "effective_rate", "disconnected", "rate_miss"]
    for split in ("val", "test"):
        head += [f"{split}_mean", f"{split}_std", f"{split}_ci95_lo", f"{split}_ci95_hi", f"{split}_n"]
    out = [",".join(head)]

    def cell(v: Any) -> str:
        return "" if v is None else (f"{v:.6f}" if isinstance(v, float) else str(v))

    for r in rows:
        cells = [cell(float(r["rate"])), str(int(r["seen"])), cell(float(r["observed_rate"]))]
        cells += [cell(float(r["effective_rate"])), str(int(r["disconnected"])), cell(float(r["rate_miss"]))]
        for split in ("val", "test"):
            e = r[split] or {}
            cells += [
                cell(e.get("mean")),
                cell(e.get("std")),
                cell(e.get("lo")),
                cell(e.get("hi")),
                cell(e.get("n")),
            ]
        out.append(",".join(cells))
    return "\n".join(out) + "\n"


def banner(spec: SweepSpec, total: int, resumed: bool, address: str | None, parent_run_id: str) -> list[str]:
    """The lines printed before the first trial: what runs, where it is recorded, how to watch it."""
    what = ", ".join(o.metric + ("" if o.mode == "max" else " (min)") for o in spec.objectives)
    targets = f" at rates {', '.join(f'{r:g}' for r in spec.targets)}" if spec.targets else ""
    repeats = len(spec.repeat_list())
    lines = [
        f"mrmp sweep {spec.name}: {total} trials{' (resumed)' if resumed else ''}, {spec.concurrency} at a time, "
        f"{spec.searcher} searcher, scheduler {'asha' if spec.scheduler else 'none'}; Ray {address or 'local'}",
        f"  selecting on validation {what}{targets}; {repeats} repeat{'s' if repeats > 1 else ''} per trial "
        "(mean and 95 % interval)",
    ]
    if spec.tracking.backend == "mlflow":
        if (spec.tracking.uri or "").startswith("sqlite:"):
            lines.append(f"  MLflow    {spec.tracking.uri}   watch now: mrmp ui {spec.ref}")
        else:
            lines.append(f"  MLflow    {spec.tracking.uri} (experiment {spec.tracking.experiment})")
        lines.append(f"            parent run {parent_run_id}")
    elif spec.tracking.backend == "local":
        lines.append(f"  records   {spec.tracking.uri}")
    lines.append(
        f"  Optuna    {spec.optuna_url} (study {spec.name})   watch now: optuna-dashboard {spec.optuna_url} "
        "--host 127.0.0.1 --server wsgiref"
    )
    lines.append(f"  files     {spec.dir}")
    return lines


def sweep_params(spec: SweepSpec) -> dict[str, Any]:
    s = spec.section
    return {
        "sweep.searcher": s.searcher,
        "sweep.trials": spec.trials,
        "sweep.concurrency": s.concurrency,
        "sweep.objectives": [f"{o.metric}:{o.mode}" for o in spec.objectives],
        "sweep.target_rates": spec.targets,
        "sweep.scheduler": spec.scheduler or "none",
        "sweep.report_every": s.report_every,
        "sweep.repeats": spec.repeats,
        "sweep.resources": {"cpu": spec.cpu, "gpu": spec.gpu},
        "sweep.space": [p.key for p in spec.space],
        "sweep.seed": s.seed,
    }


def summary_lines(spec: SweepSpec, outcome: Any) -> list[str]:
    """What a sweep prints at its end: outcomes, the best trial per method, failures, where to look."""
    lines: list[str] = []
    log = lines.append
    first = spec.objectives[0]
    log("")
    log(
        f"sweep {spec.name}: {outcome.status} in {outcome.wall_s:.0f} s; trials: "
        + ", ".join(f"{n} {k}" for k, n in sorted(outcome.trials.items()))
    )
    if outcome.best:
        log(
            f"best trial per method (validation {first.metric}, mean and 95 % interval over repeats; test beside):"
        )
        for m, row in outcome.best.items():
            scores = {k: v for k, v in row.items() if v is not None}
            log(f"  {m:<8} {row['trial']:<12} {describe_short(spec, scores)}")
    for line in outcome.failed:
        log(f"  failed: {line[:200]}")
    ref = spec.ref
    log("where to look:")
    if spec.tracking.backend == "mlflow":
        log(f"  MLflow UI         mrmp ui {ref}      (store {spec.tracking.uri})")
    elif spec.tracking.backend == "local":
        log(f"  tracking files    {spec.tracking.uri}")
    log(f"  Optuna dashboard  optuna-dashboard {spec.optuna_url} --host 127.0.0.1 --server wsgiref")
    log(f"  report            {spec.dir / 'report' / 'report.md'}   (mrmp report {ref} --out DIR)")
    log(f"  best configs      mrmp export {ref} --out best/")
    if outcome.exit_code in (130, 3):
        sets = "".join(f" --set {o}" for o in spec.overrides)
        why = "interrupted" if outcome.exit_code == 130 else "a trial's process was lost; resuming retries it"
        log(f"  resume ({why}): mrmp sweep {spec.path} --resume{sets}")
    return lines
