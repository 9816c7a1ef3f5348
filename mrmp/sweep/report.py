"""`mrmp report`: what a sweep found, for people. Read from the tracking store alone (no Ray).

Writes `report.md` (the best trial per method by validation score, with its 95 % interval and the test score
beside; every completed trial ranked, marking those whose interval overlaps the best one's; each method's
frontier), `frontier.png`, `frontier.csv` and `trials.csv` (one flat row per trial). The driver refreshes the
same files on the sweep's parent run as trials finish.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrmp.stats import Estimate
from mrmp.tracking import Tracker

from .lifecycle import Outcome, Tag, TrialRuns
from .objectives import RATE_MISS, RATE_OK, Objective
from .results import TrialRecord, best_per_method, frontier, outcome_counts, ranked, trials
from .state import SweepState, read_state

REPORT_EVERY_S = 30.0  # the parent run's report is refreshed at most this often while trials finish


def _pct(e: Estimate | None) -> str:
    return "–" if e is None else e.format()


def _val(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}"


def data_note(state: SweepState) -> str:
    """Which data the sweep used; synthetic data is named as such, never as SBU or FPHA."""
    import yaml

    from mrmp.data.registry import DATASETS

    base: dict[str, Any] = {}
    path = state.dir / "sweep.yaml"
    if path.is_file():
        base = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("base") or {}
    name = (base.get("data") or {}).get("name", "synthetic-sbu")
    entry = DATASETS.get(name)
    return f"Data: {entry.describe()}." if entry else f"Data: `data.name: {name}`."


def trials_csv(records: Sequence[TrialRecord], objectives: Sequence[Objective]) -> str:
    """One flat row per trial: Optuna number, run, method, outcome, epochs, times, the rate check, the objectives
    (validation mean, std and interval; test mean) and a column per sampled parameter."""
    params = list(dict.fromkeys(k for r in records for k in r.sample))
    head = ["optuna_number", "run_id", "name", "method", "outcome", "epochs", "trial_s", "train_s"]
    head += [RATE_MISS, RATE_OK]
    for o in objectives:
        head += [o.key, f"{o.key}_std", f"{o.key}_ci95_lo", f"{o.key}_ci95_hi", f"test_{o.name}"]
    head += params
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for r in records:
        row: list[Any] = [
            r.number,
            r.run_id,
            r.name,
            r.method,
            r.outcome.value,
            r.run.tags.get(Tag.EPOCHS, ""),
        ]
        row += [_num(r.metric("time/trial_s")), _num(r.metric("time/train_s"))]
        row += [_num(r.metric(RATE_MISS)), _num(r.metric(RATE_OK))]
        for o in objectives:
            row += [
                _num(r.metric(k)) for k in (o.key, f"{o.key}_std", f"{o.key}_ci95_lo", f"{o.key}_ci95_hi")
            ]
            row.append(_num(r.metric(f"test_{o.name}")))
        row += [_cell(r.sample.get(k)) for k in params]
        w.writerow(row)
    return buf.getvalue()


def _miss(r: TrialRecord) -> str:
    """A trial's largest rate miss where scored, in points, marked when beyond the tolerance (`rate_ok`)."""
    if r.rate_miss is None:
        return "–"
    return f"{r.rate_miss * 100:.2f}" + ("" if r.rate_ok else " **missed**")


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.6g}"


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return str(v)


def build_report(
    state: SweepState,
    out: str | Path,
    tracker: Tracker | None = None,
    curves: dict[str, list[dict[str, Any]]] | None = None,
) -> Path:
    """Write the report files into `out`; returns the markdown path. `curves`: see `results.frontier`."""
    from mrmp.tracking.plots import frontier_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tracker = tracker or state.tracking.create()
    records = trials(tracker, state)
    objectives = state.objectives
    first = objectives[0]
    counts = outcome_counts(records)
    best = best_per_method(records, first, stopped_too=True)
    lines = [
        f"# Sweep `{state.name}`",
        "",
        data_note(state),
        "",
        f"Selected by **validation** `{first.metric}` ({first.mode}"
        + (f", at rates {', '.join(f'{r:g}' for r in state.targets)}" if state.targets else "")
        + "): the mean over each trial's repeats with its 95 % t interval (± half-width, in points; an interval "
        "running past 0–100 % is shown clipped, `[lo, hi]`). Test accuracy is shown beside it and is never used to "
        "choose. Trials: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        + f". MLflow parent run `{state.parent_run_id}`.",
        "",
    ]
    tol = state.rate_tolerance
    if tol is not None:
        lines += [
            f"`rate miss`: the trial's largest |observed − asked| pruning rate, in points, over the rates its "
            f"objective scores and its repeats. Beyond `sweep.rate_tolerance` ({tol * 100:g} "
            + ("point" if tol == 0.01 else "points")
            + ") it is "
            "**missed**: such a trial ranks after every trial that held its rates (a network pruned less than "
            "asked would win on accuracy), Optuna is told it is infeasible, and the frontier skips the points "
            "that missed their rate.",
            "",
        ]
    lines += [
        "## Best trial per method",
        "",
        f"| method | trial | validation {first.metric} | test | rate miss | epochs | sampled |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, r in best.items():
        epochs = r.run.tags.get(Tag.EPOCHS, "?")
        if r.outcome is Outcome.STOPPED_EARLY:
            epochs += " (stopped early: no completed trial)"
        sample = ", ".join(
            f"{k.split('.', 1)[1]}={_cell(v)}" for k, v in r.sample.items() if k != "method.name"
        )
        lines.append(
            f"| {method} | {r.name} | {_pct(r.estimate(first.key))} | {_val(r.metric(f'test_{first.name}'))} | "
            f"{_miss(r)} | {epochs} | {sample or '–'} |"
        )
    if not best:
        lines.append("| (no trial with a score yet) | | | | | | |")
    missed = [m for m, r in best.items() if r.outcome is Outcome.COMPLETED and not r.rate_ok]
    if missed:
        lines += [
            "",
            f"**{', '.join(missed)}: every completed trial missed a scored rate**; the best of them is shown, "
            "pruned less (or more) than asked. Raise the KL weight or the anchor weight, or score rates the "
            "method trains for (docs/methods.md).",
        ]
    top = ranked(records, first)
    if top:
        lead = top[0].estimate(first.key)
        lines += [
            "",
            "## Completed trials, best first",
            "",
            f"`≈ best`: the trial's interval overlaps the best trial's ({_pct(lead)}): the data cannot tell them "
            "apart.",
            "",
            f"| # | trial | method | validation {first.metric} | test | rate miss | ≈ best |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, r in enumerate(top, 1):
            e = r.estimate(first.key)
            close = "yes" if e is not None and lead is not None and e.overlaps(lead) else ""
            test = _val(r.metric(f"test_{first.name}"))
            lines.append(f"| {i} | {r.name} | {r.method} | {_pct(e)} | {test} | {_miss(r)} | {close} |")
    fronts = {
        m: frontier(tracker, [r for r in records if r.method == m], curves, tol)
        for m in dict.fromkeys(r.method for r in records)
    }
    fronts = {m: rows for m, rows in fronts.items() if rows}
    if fronts:
        lines += [
            "",
            "## Frontier per method",
            "",
            "At each rate, the best validation accuracy over all of the method's completed trials"
            + (" whose network there is within the rate tolerance" if tol is not None else "")
            + ", and the test accuracy of that same trial's networks (single-rate methods appear only at the "
            "rates they trained for). `frontier.csv` has every rate.",
            "",
            "![frontier](frontier.png)",
            "",
            "| method | rate | best validation | its test | trial |",
            "|---|---|---|---|---|",
        ]
        for m, rows in fronts.items():
            shown = rows if len(rows) <= 8 else [r for r in rows if _round_rate(r["rate"])]
            for row in shown:
                lines.append(
                    f"| {m} | {row['rate']:g} | {_val(row['val'])} | {_val(row['test'])} | {row['trial']} |"
                )
        (out / "frontier.png").write_bytes(frontier_png(fronts, title=f"sweep {state.name}"))
        with open(out / "frontier.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["method", "rate", "val", "val_ci95_lo", "val_ci95_hi", "test", "trial", "run_id"])
            for m, rows in fronts.items():
                for row in rows:
                    w.writerow([m, f"{row['rate']:g}"] + [_num(row[k]) for k in ("val", "val_lo", "val_hi", "test")]
                               + [row["trial"], row["run_id"]])  # fmt: skip
    where = _shown(state.dir)
    lines += [
        "",
        f"Regenerate: `mrmp report {where} --out {out}`; best configs: `mrmp export {where} --out best/`.",
        "",
    ]
    (out / "trials.csv").write_text(trials_csv(records, objectives), encoding="utf-8")
    md = out / "report.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    return md


def log_history(tracker: Tracker, state: SweepState, records: Sequence[TrialRecord]) -> None:
    """The sweep's history on its parent run, for MLflow's chart view: each completed trial's validation score
    (`trials/<key>`) and the best so far (`best/<key>`), step = Optuna number. Append-only: a resumed or grown
    sweep adds the trials it has not logged yet."""
    objective = state.objectives[0]
    key = objective.key
    logged = {s for s, _ in tracker.metric_history(state.parent_run_id, f"trials/{key}")}
    done = sorted(
        (
            r
            for r in records
            if r.outcome is Outcome.COMPLETED and r.number is not None and r.metric(key) is not None
        ),
        key=lambda r: r.number,
    )
    sign = 1 if objective.mode == "max" else -1
    best, points = None, []
    for r in done:
        value = r.metric(key)
        best = value if best is None or sign * value > sign * best else best
        if r.number not in logged:
            points += [(f"trials/{key}", value, r.number), (f"best/{key}", best, r.number)]
    tracker.log_series(state.parent_run_id, points)


def _round_rate(rate: float) -> bool:
    """Rates worth a row in the markdown (the CSV has all): 0.5, 0.6, ..., 0.9 and 0.95, 0.98."""
    return any(abs(rate - r) < 1e-9 for r in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98))


@dataclass
class ReportRefresher:
    """Puts the sweep's report (table, frontier plot, trials.csv) on its parent run as trials finish, at most
    every `every_s` seconds (picklable: a restored part brings it back)."""

    sweep_dir: Path
    parent_id: str
    every_s: float = REPORT_EVERY_S
    _due: float = 0.0
    _curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)  # see results.frontier

    def __getstate__(self) -> dict[str, Any]:  # Tune saves it with the experiment: the memo stays out
        return {**self.__dict__, "_curves": {}}

    def __call__(self, runs: TrialRuns, log: Callable[[str], None] = print) -> None:
        if time.monotonic() < self._due:
            return
        self._due = time.monotonic() + self.every_s
        if runs.spec.tracking.backend == "none":
            return
        state = read_state(self.sweep_dir)
        out = self.sweep_dir / "report"
        try:
            build_report(state, out, tracker=runs.tracker, curves=self._curves)
            for name in ("report.md", "frontier.png", "frontier.csv", "trials.csv"):
                if (out / name).exists():
                    runs.tracker.log_artifact(self.parent_id, f"report/{name}", (out / name).read_bytes())
        except Exception as e:  # noqa: BLE001  (a report is a view: never stop the sweep over it)
            log(f"warning: the report could not be refreshed: {type(e).__name__}: {e}")


def _shown(path: Path) -> str:
    """A path as a user would type it here: relative to the working directory when under it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(path)
