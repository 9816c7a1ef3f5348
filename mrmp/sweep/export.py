"""After a sweep: the best configs as runnable YAML (`mrmp export`) and a markdown + PNG report (`mrmp report`).

Both read the sweep back through its tracker (MLflow or local files), never through Ray: they work on a laptop
after the cluster is gone. Only completed trials compete (early-stopped trials were judged on fewer epochs).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import yaml

from mrmp.tracking import RunRecord, rate_step

from .objectives import metric_value
from .results import SweepState, best_by, best_per_method, completed, load_curve, trials
from .spec import Objective

SCORE_KEYS = ("auc", "mean_seen", "mean_unseen", "worst_unseen", "dense")
REPORT_RATES = (0.5, 0.7, 0.9, 0.95, 0.98)


def _objective(state: SweepState, metric: str | None, mode: str | None) -> Objective:
    if metric is None:
        return state.objectives[0]
    return Objective(metric, mode or "max")


def _entry(
    state: SweepState, run: RunRecord, method: str, path: Path, obj: Objective, out: Path
) -> dict[str, Any]:
    tracker = state.tracking.create()
    summary = json.loads(tracker.read_artifact(run.run_id, "summary.json"))
    entry = {
        "method": method,
        "file": path.name,
        "metric": obj.metric,
        "mode": obj.mode,
        "value": run.metrics.get(obj.key),
        "run_id": run.run_id,
        "trial": run.name,
        "trial_id": run.tags.get("mrmp.trial_id"),
        "config_hash": run.tags.get("mrmp.config_hash"),
        "scores": {k: run.metrics.get(k) for k in SCORE_KEYS},
        "command": f"mrmp train {out / path.name} --out runs/export/{path.stem}",
    }
    if len(summary["repeats"]) > 1:  # the file is repeat 0; say what it alone scored
        first = summary["repeats"][0]
        entry["repeat0"] = {"overrides": first["overrides"], "value": first["scores"].get(obj.key)}
        entry["note"] = "value is the mean over the repeats; the file is the first repeat (see repeat0)"
    return entry


def export_best(
    state: SweepState,
    out: str | Path,
    metric: str | None = None,
    mode: str | None = None,
    rates: list[float] | None = None,
) -> list[dict[str, Any]]:
    """Write `<method>.yaml` (best completed trial per method) and, for each of `rates`,
    `<method>@<rate>.yaml` (best accuracy at that rate), plus `manifest.json`. Returns the manifest entries."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tracker = state.tracking.create()
    runs = trials(tracker, state)
    obj = _objective(state, metric, mode)
    entries = []
    for method, run in best_per_method(runs, obj).items():
        path = out / f"{method}.yaml"
        path.write_bytes(tracker.read_artifact(run.run_id, "config.yaml"))
        entries.append(_entry(state, run, method, path, obj, out))
    for rate in rates or []:
        at = Objective(f"acc@{rate:g}", "max")
        methods = dict.fromkeys(r.tags.get("mrmp.method", "?") for r in completed(runs))
        for method in methods:
            candidates = []
            for r in completed(runs):
                if r.tags.get("mrmp.method") != method:
                    continue
                history = dict(tracker.metric_history(r.run_id, "acc"))
                if rate_step(rate) in history:
                    candidates.append(
                        RunRecord(
                            r.run_id,
                            r.name,
                            r.status,
                            r.parent_id,
                            r.tags,
                            r.params,
                            {at.key: history[rate_step(rate)]},
                        )
                    )
            best = best_by(candidates, at.key, "max")
            if best is None:
                continue
            path = out / f"{method}@{rate:g}.yaml"
            path.write_bytes(tracker.read_artifact(best.run_id, "config.yaml"))
            full = next(r for r in runs if r.run_id == best.run_id)
            entry = _entry(state, full, method, path, at, out)
            entry["value"] = best.metrics[at.key]
            entries.append(entry)
    manifest = {
        "sweep": state.name,
        "parent_run_id": state.parent_run_id,
        "tracking": state.data["tracking"],
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "selected_by": {"metric": obj.metric, "mode": obj.mode},
        "entries": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return entries


def _data_note(state: SweepState) -> str:
    base = {}
    path = state.dir / "sweep.yaml"
    if path.is_file():
        base = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("base") or {}
    name = (base.get("data") or {}).get("name", "synthetic-sbu")
    if name.startswith("synthetic-"):
        like = name.split("-", 1)[1].upper()
        return (
            f"Data: synthetic {like}-like data generated by mrmp (`data.name: {name}`): not {like}; "
            "these numbers say nothing about the real dataset."
        )
    return f"Data: `data.name: {name}` (the user's copy of the dataset)."


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("–" if v is None else str(v))


def build_report(state: SweepState, out: str | Path) -> Path:
    """`report.md` (best completed trial per method), `curves.png` (their accuracy-vs-rate curves overlaid)
    and `curves.csv` (the same curves, long format). Returns the markdown path."""
    from mrmp.tracking.plots import curves_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tracker = state.tracking.create()
    runs = trials(tracker, state)
    objectives = state.objectives
    obj = objectives[0]
    best = best_per_method(runs, obj)
    curves = {m: load_curve(tracker, r.run_id) for m, r in best.items()}

    counts: dict[str, int] = {}
    for r in runs:
        k = r.tags.get("mrmp.outcome", r.status.lower())
        counts[k] = counts.get(k, 0) + 1
    rates = [r for r in REPORT_RATES if any(abs(p.rate - r) < 1e-9 for c in curves.values() for p in c)]
    head = ["method", "trial", *[o.metric for o in objectives if o.key not in SCORE_KEYS], *SCORE_KEYS]
    head += [f"acc@{r:g}" for r in rates] + ["seen rates", "epochs"]
    lines = [
        f"# Sweep `{state.name}`: best completed trial per method",
        "",
        f"Selected by `{obj.metric}` ({obj.mode}). Trials: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        + f". MLflow parent run `{state.parent_run_id}`.",
        "",
        _data_note(state),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    rows_csv = io.StringIO()
    w = csv.writer(rows_csv, lineterminator="\n")
    w.writerow(["method", "trial", "run_id", "rate", "accuracy", "seen"])
    for m, r in best.items():
        c = curves[m]
        seen = [p.rate for p in c if p.seen and p.rate > 0]
        cells = [m, r.name]
        cells += [_fmt(r.metrics.get(o.key)) for o in objectives if o.key not in SCORE_KEYS]
        cells += [_fmt(r.metrics.get(k)) for k in SCORE_KEYS]
        cells += [_fmt(metric_value(f"acc@{x}", c)) for x in rates]
        cells += [", ".join(f"{x:g}" for x in seen) or "–", r.tags.get("mrmp.epochs", "?")]
        lines.append("| " + " | ".join(cells) + " |")
        for p in c:
            w.writerow([m, r.name, r.run_id, f"{p.rate:.4f}", f"{p.accuracy:.6f}", p.seen])
    if not best:
        lines.append("| (no completed trial) |" + " |" * (len(head) - 1))
    lines += [
        "",
        "![accuracy vs pruning rate, best trial per method](curves.png)",
        "",
        "Scores are over the pruned rates (rate > 0); `dense` is the accuracy at rate 0. `auc` is the area under "
        "accuracy vs rate divided by the rate span. Seen rates are those the training targeted.",
        "",
        f"Regenerate: `mrmp report {state.dir} --out {out}`; configs: `mrmp export {state.dir} --out best/`.",
        "",
    ]
    (out / "curves.png").write_bytes(
        curves_png({f"{m} ({best[m].name})": c for m, c in curves.items()}, title=f"sweep {state.name}")
    )
    (out / "curves.csv").write_text(rows_csv.getvalue(), encoding="utf-8")
    md = out / "report.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    return md
