"""Does a sweep's selection repeat? Compare two finished runs of the same sweep made with different searcher seeds.

For each pair it writes (generated, to `--out`): which method each run names best, and whether each run's best
configuration scores (its validation mean over repeats) inside the other run's best interval. Reads both sweeps
through mrmp's read API (`open_sweep`, `mrmp.sweep.results`): no second engine.

    python scripts/selection_repeats.py runs/sweeps/quickstart runs/sweeps/quickstart-seed1 \
        --out results/sweeps/selection/quickstart
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from mrmp.provenance import record
from mrmp.stats import Estimate, interval_text
from mrmp.sweep.results import best_per_method, ranked, trials
from mrmp.sweep.state import open_sweep


def best(ref: str) -> tuple[str, dict]:
    state = open_sweep(ref)
    tracker = state.tracking.create()
    records = trials(tracker, state)
    objective = state.objectives[0]
    top = ranked(records, objective)
    per_method = best_per_method(records, objective)
    if not top:
        raise SystemExit(f"{ref}: no completed trial")
    lead = top[0]

    def row(r) -> dict:
        e: Estimate = r.estimate(objective.key)
        return {
            "trial": r.name,
            "method": r.method,
            "sample": r.sample,
            "val": e.mean,
            "val_ci95": [e.lo, e.hi] if e.lo is not None else None,
            "test": r.metric(f"test_{objective.name}"),
        }

    return objective.metric, {
        "sweep": state.name,
        "searcher_seed": (yaml.safe_load((state.dir / "sweep.yaml").read_text()).get("sweep") or {}).get(
            "seed", 0
        ),
        "best": row(lead),
        "per_method": {m: row(r) for m, r in per_method.items()},
        "completed": len(top),
    }


def inside(value: float, ci: list[float] | None) -> bool | None:
    return None if ci is None else ci[0] <= value <= ci[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="first sweep (file, folder or name)")
    p.add_argument("b", help="the same sweep run with another searcher seed")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    metric, a = best(args.a)
    _, b = best(args.b)
    same_method = a["best"]["method"] == b["best"]["method"]
    a_in_b = inside(a["best"]["val"], b["best"]["val_ci95"])
    b_in_a = inside(b["best"]["val"], a["best"]["val_ci95"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"metric": metric, "a": a, "b": b, "same_best_method": same_method, "a_best_in_b_interval": a_in_b,
           "b_best_in_a_interval": b_in_a, **record()}  # fmt: skip
    (out / "selection.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    def fmt(r: dict) -> str:  # the reports' form: ± half-width, an interval past 0–100 % clipped, [lo, hi]
        ci = r["val_ci95"] or (None, None)
        val = interval_text(r["val"], ci[0], ci[1])
        return f"{val} (test {r['test'] * 100:.1f})" if r["test"] is not None else val

    lines = [
        f"| run | best trial | method | validation {metric} (mean ± 95 % half-width, or the interval clipped), test | inside the other's interval |",
        "|---|---|---|---|---|",
        f"| {a['sweep']} | {a['best']['trial']} | {a['best']['method']} | {fmt(a['best'])} | {a_in_b} |",
        f"| {b['sweep']} | {b['best']['trial']} | {b['best']['method']} | {fmt(b['best'])} | {b_in_a} |",
        "",
        f"Same best method: {same_method}.",
        "",
        "| method | " + " | ".join(f"best in {x['sweep']}" for x in (a, b)) + " |",
        "|---|---|---|",
    ]
    for m in dict.fromkeys([*a["per_method"], *b["per_method"]]):
        cells = [
            fmt(x["per_method"][m]) + f" ({x['per_method'][m]['trial']})" if m in x["per_method"] else "–"
            for x in (a, b)
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    (out / "selection.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
