"""`mrmp export`: the best configurations of a sweep as runnable YAML, and a manifest of what they scored.

Read from the tracking store alone (no Ray). Only completed trials compete (early-stopped ones were judged on
fewer epochs), by the validation score, those that held their scored rates first (`results.ranked`); the
manifest gives its 95 % interval, the test score and the rate check (`rate_miss`, `rate_ok`) beside. Each
file begins with a comment naming the sweep, the trial, its run and its score, and is the first repeat's config
(`mrmp train FILE` re-runs it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mrmp.tracking import Tracker

from .objectives import Objective
from .results import TrialRecord, best_per_method, frontier, trials
from .state import SweepState, now


def _objective(state: SweepState, metric: str | None, mode: str | None) -> Objective:
    return state.objectives[0] if metric is None else Objective(metric, mode or "max")


def _estimate(r: TrialRecord, key: str) -> dict[str, Any] | None:
    e = r.estimate(key)
    return (
        None
        if e is None
        else {"mean": e.mean, "std": e.std, "ci95": [e.lo, e.hi] if e.lo is not None else None}
    )


def _entry(
    tracker: Tracker, state: SweepState, r: TrialRecord, path: Path, obj: Objective, out: Path
) -> dict[str, Any]:
    from mrmp.train import CurvePoint

    from .objectives import metric_value
    from .results import unit_curve
    from .views import train_command

    summary = json.loads(tracker.read_artifact(r.run_id, "summary.json"))
    units = summary.get("units", [])
    first: list[CurvePoint] = unit_curve(tracker, r.run_id, 0)
    targets = [units[0]["target"]] if units and units[0].get("target") is not None else state.targets
    return {
        "method": r.method,
        "file": path.name,
        "metric": obj.metric,
        "mode": obj.mode,
        "validation": _estimate(r, obj.key),
        "test": _estimate(r, f"test_{obj.name}"),
        "rate_miss": r.rate_miss,
        "rate_ok": r.rate_ok,
        "first_unit": {
            "label": units[0].get("label") if units else None,
            "validation": metric_value(obj.metric, first, targets, "val"),
            "test": metric_value(obj.metric, first, targets, "test"),
        },
        "run_id": r.run_id,
        "trial": r.name,
        "optuna_number": r.number,
        "sample": r.sample,
        "units": [u.get("label") for u in units],
        "targets": targets,
        "unit_configs": [
            {"repeat": u["repeat"], "target": u["target"], "config": u["config"]} for u in units
        ],
        "note": "the file is the first unit's config (first_unit: what it scored); validation/test are means "
        "over all units"
        if len(units) > 1
        else None,
        "command": train_command([obj], targets, str(out / path.name), f"runs/export/{path.stem}"),
    }


def export_best(
    state: SweepState,
    out: str | Path,
    metric: str | None = None,
    mode: str | None = None,
    rates: list[float] | None = None,
    networks: bool = False,
    network_rates: list[float] | None = None,
) -> list[dict[str, Any]]:
    """Write `<method>.yaml` (best completed trial per method), for each of `rates` `<method>@<rate>.yaml`
    (the trial on the method's validation frontier at that rate), and `manifest.json`. Returns its entries.

    `networks`: also write each best trial's network, pruned (`networks/<method>-<rate>.pt`, sparse on disk,
    loadable with `weights_only=True`): at its trained rate, or, read at any rate, at `network_rates` (default:
    the sweep's target rates and a few more)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tracker = state.tracking.create()
    records = trials(tracker, state)
    obj = _objective(state, metric, mode)
    tol = state.rate_tolerance
    entries = []
    for method, r in best_per_method(records, obj).items():
        path = out / f"{method}.yaml"
        path.write_bytes(tracker.read_artifact(r.run_id, "config.yaml"))
        entry = _entry(tracker, state, r, path, obj, out)
        if networks:
            from .networks import write_networks

            files = write_networks(tracker, r, out / "networks", state.targets, network_rates)
            entry["networks"] = [
                {
                    "file": f"networks/{f.path.name}",
                    "rate": f.info.rate,
                    "bytes": f.bytes,
                    "val_accuracy": f.info.val_accuracy,
                    "test_accuracy": f.info.test_accuracy,
                    "kept": f.info.kept,
                    "prunable": f.info.prunable,
                }  # fmt: skip
                for f in files
            ]
        entries.append(entry)
    by_id = {r.run_id: r for r in records}
    for rate in rates or []:
        for method in dict.fromkeys(r.method for r in records):
            rows = [
                row
                for row in frontier(tracker, [r for r in records if r.method == method], None, tol)
                if abs(row["rate"] - rate) < 1e-9
            ]
            if not rows:
                continue
            row, r = rows[0], by_id[rows[0]["run_id"]]
            path = out / f"{method}@{rate:g}.yaml"
            path.write_bytes(tracker.read_artifact(r.run_id, "config.yaml"))
            at = Objective(f"acc@{rate:g}", "max")
            entry = _entry(tracker, state, r, path, at, out)
            entry["validation"] = {
                "mean": row["val"],
                "ci95": [row["val_lo"], row["val_hi"]] if row["val_lo"] is not None else None,
            }
            entry["test"] = {"mean": row["test"]}
            entries.append(entry)
    manifest = {
        "sweep": state.name,
        "parent_run_id": state.parent_run_id,
        "tracking": state.data["tracking"],
        "exported_at": now(),
        "selected_by": {"metric": obj.metric, "mode": obj.mode, "split": "validation", "rate_tolerance": tol},
        "entries": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return entries
