"""Turn the rows of `scripts/methods_runs.py` into the generated tables and plots of results/methods.

Reads every CSV given (one row per configuration, dataset, fold, seed and rate) and the protocol they came from;
writes `tables.md` (generated: a re-run replaces it, no hand-written prose in it), `summary.csv` and PNGs to
--out. Intervals are 95 % t-intervals of the mean over runs (folds × seeds); paired comparisons (MRMP against
SRMP, a method against a baseline) take the difference within each (fold, seed) first.

    python scripts/methods_tables.py results/methods/protocol.yaml results/methods/runs-*.csv --out results/methods
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

# two-sided 95 % Student t quantiles, by degrees of freedom (1..30); beyond 30 the normal 1.96 is within 2 %
_T975 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]  # fmt: skip

Key = tuple[str, int, int]  # dataset, fold, seed


def t975(df: int) -> float:
    return _T975[df - 1] if df <= len(_T975) else 1.96


def interval(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, 95 % t half-width (nan for one value), n."""
    n = len(values)
    m = statistics.fmean(values)
    if n < 2:
        return m, float("nan"), n
    return m, t975(n - 1) * statistics.stdev(values) / math.sqrt(n), n


def fmt(values: Sequence[float], scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    """`mean ± half-width` in points (scale 100), or – for no data."""
    if not values:
        return "–"
    m, h, _ = interval([v * scale for v in values])
    sign = "+" if signed else ""
    return f"{m:{sign}.{digits}f} ± {h:.{digits}f}" if not math.isnan(h) else f"{m:{sign}.{digits}f}"


class Runs:
    """Curves by configuration label and run: `curve(label, key)` maps rate -> row."""

    def __init__(self, rows: Iterable[dict[str, str]]):
        self.curves: dict[str, dict[Key, dict[float, dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for r in rows:
            key = (r["dataset"], int(r["fold"]), int(r["seed"]))
            row = {
                "rate": round(float(r["rate"]), 4),
                "seen": int(r["seen"]),
                "val": float(r["val_accuracy"]) if r["val_accuracy"] else None,
                "test": float(r["test_accuracy"]),
                "observed": float(r["observed_rate"]),
                "effective": float(r["effective_rate"]),
                "disconnected": int(r["disconnected"]),
                "cpu": float(r["cpu_s"]),
                "train_cpu": float(r["train_cpu_s"]),
                "train_accuracy": float(r["train_accuracy"]) if r["train_accuracy"] else float("nan"),
                "diverged": r["diverged"],
                "commit": r["commit"],
            }
            self.curves[r["label"]][key][row["rate"]] = row

    def keys(self, label: str, dataset: str) -> list[Key]:
        return sorted(k for k in self.curves.get(label, {}) if k[0] == dataset)

    def values(self, label: str, dataset: str, rate: float, field: str = "test") -> list[float]:
        out = []
        for k in self.keys(label, dataset):
            row = self.curves[label][k].get(round(rate, 4))
            if row is not None and row[field] is not None:
                out.append(row[field])
        return out

    def paired(self, a: str, b: str, dataset: str, rate_a: float, rate_b: float | None = None) -> list[float]:
        """Per run present in both: test(a at rate_a) − test(b at rate_b)."""
        rate_b = rate_a if rate_b is None else rate_b
        out = []
        for k in self.keys(a, dataset):
            ra = self.curves[a][k].get(round(rate_a, 4))
            rb = self.curves.get(b, {}).get(k, {}).get(round(rate_b, 4))
            if ra is not None and rb is not None:
                out.append(ra["test"] - rb["test"])
        return out

    def cpu(self, label: str, dataset: str) -> list[float]:
        """CPU seconds of each run's training (to the end of its last epoch: setup included, evaluation not)."""
        return [next(iter(self.curves[label][k].values()))["train_cpu"] for k in self.keys(label, dataset)]

    def cost_ratios(self, label: str, others: Sequence[str], dataset: str) -> list[float]:
        """Per run of `label`: its training CPU over the mean training CPU of the `others` runs of the same
        dataset, fold and seed."""
        out = []
        for k in self.keys(label, dataset):
            ref = [
                next(iter(self.curves[o][k].values()))["train_cpu"]
                for o in others
                if k in self.curves.get(o, {})
            ]
            if ref:
                out.append(next(iter(self.curves[label][k].values()))["train_cpu"] / statistics.fmean(ref))
        return out


# --- the protocol's families -----------------------------------------------------------------------------------


def single_rate(protocol: dict[str, Any], family: str) -> dict[float, str]:
    """rate -> label of the single-rate configurations of a family (labels `family@rate`)."""
    out = {}
    for c in protocol["configs"]:
        name, _, rate = c["label"].partition("@")
        if name == family and rate:
            out[round(float(rate), 4)] = c["label"]
    return out


def mrmp_configs(protocol: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in protocol["configs"] if c["method"]["name"] == "mrmp"]


def datasets(protocol: dict[str, Any]) -> list[str]:
    return [d["name"] for d in protocol["datasets"]]


def pretty(dataset: str) -> str:
    return {"synthetic-sbu": "synthetic SBU-like", "synthetic-fpha": "synthetic FPHA-like"}.get(
        dataset, dataset
    )


# --- verdicts ------------------------------------------------------------------------------------------------


def within(diffs: list[float], margin: float) -> str:
    """Whether mean(diffs) ≥ −margin points, at 95 %: `holds` (the whole interval above −margin), `fails` (the
    whole interval below), `not shown` (the interval across −margin: these runs cannot tell)."""
    if not diffs:
        return "no data"
    m, h, _ = interval([100 * d for d in diffs])
    if math.isnan(h):
        return "holds" if m >= -margin else "fails"
    if m - h >= -margin:
        return "holds"
    return "fails" if m + h < -margin else "not shown"


# --- tables ----------------------------------------------------------------------------------------------------


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def accuracy_table(runs: Runs, protocol: dict[str, Any], dataset: str) -> list[str]:
    """Test accuracy per rate and method: every single-rate family at its rates, every any-rate configuration
    (MP, random, MRMP) at the same rates."""
    families = protocol["tables"]["accuracy"]
    rates = sorted({r for f in families for r in single_rate(protocol, f)} | set(protocol["tables"]["rates"]))
    any_rate = [c["label"] for c in protocol["configs"] if "@" not in c["label"] and c["label"] in families]
    head = ["rate", *[f"{f}" for f in families]]
    rows = []
    for rate in rates:
        cells = [f"{rate:.2f}"]
        for f in families:
            label = f if f in any_rate else single_rate(protocol, f).get(round(rate, 4))
            vals = runs.values(label, dataset, rate) if label else []
            cells.append(fmt(vals))
        rows.append(cells)
    n = len(runs.keys(families[0], dataset)) or max(len(runs.keys(lbl, dataset)) for lbl in runs.curves)
    return [
        f"Test accuracy (%), mean ± 95 % t-interval over {n} runs (folds × seeds); `–`: not trained there.",
        "",
        *md_table(head, rows),
    ]


MARGIN_SEEN = 2.0  # points: MRMP within this of SRMP at a seen rate
MARGIN_UNSEEN = 1.0  # points: unseen rates within this of the interpolation of their seen neighbours
MAX_COST = 1.5  # one MRMP training against one SRMP training
TOLERANCE = 1.0  # points: observed rate against the target


def mrmp_checks(runs: Runs, protocol: dict[str, Any], label: str, dataset: str) -> dict[str, Any]:
    """The numbers behind MRMP's verdicts: paired differences to SRMP per seen rate, unseen-rate gaps, cost."""
    srmp = single_rate(protocol, protocol["tables"]["srmp"])
    key0 = runs.keys(label, dataset)[0]
    seen = sorted(r for r, row in runs.curves[label][key0].items() if row["seen"] and r > 0)
    per_rate = {}
    for r in seen:
        d = runs.paired(label, srmp[r], dataset, r) if r in srmp else []
        if d:
            per_rate[r] = (d, within(d, MARGIN_SEEN))
    gaps = unseen_gaps(runs, label, dataset)
    per_run = [statistics.fmean(g.values()) for g in gaps if g]
    by_rate: dict[float, list[float]] = defaultdict(list)
    for g in gaps:
        for r, v in g.items():
            by_rate[r].append(v)
    ratios = runs.cost_ratios(label, list(srmp.values()), dataset)
    return {"per_rate": per_rate, "gap_runs": per_run, "gap_rates": by_rate, "ratios": ratios}


def mrmp_vs_srmp(runs: Runs, protocol: dict[str, Any], dataset: str) -> list[str]:
    """Each MRMP configuration against SRMP trained at each seen rate (paired by fold and seed), each unseen rate
    against the interpolation of its two seen neighbours, and the training cost."""
    srmp = single_rate(protocol, protocol["tables"]["srmp"])
    out = []
    for c in mrmp_configs(protocol):
        label = c["label"]
        if not runs.keys(label, dataset):
            continue
        chk = mrmp_checks(runs, protocol, label, dataset)
        rows = [
            [f"{r:.2f}", fmt(runs.values(label, dataset, r)), fmt(runs.values(srmp[r], dataset, r)),
             fmt(d, signed=True), v]
            for r, (d, v) in chk["per_rate"].items()
        ]  # fmt: skip
        worst = min(
            ((statistics.fmean(v), r) for r, v in chk["gap_rates"].items()), default=(float("nan"), 0.0)
        )
        out += [
            f"#### `{label}` ({describe(c)})",
            "",
            f"- unseen rates − linear interpolation of their two seen neighbours: {fmt(chk['gap_runs'], signed=True)} "
            f"points (each run's mean over its unseen rates, then over {len(chk['gap_runs'])} runs); worst rate "
            f"{worst[1]:.2f} at {worst[0] * 100:+.1f}",
            f"- training CPU: {fmt(runs.cpu(label, dataset), 1.0)} s; over the same fold and seed's mean SRMP "
            f"training: {fmt(chk['ratios'], 1.0, 2)}× (runs hours apart on a shared machine: the side-by-side "
            "cost check is the verdict's)",
            "",
            *md_table(
                ["seen rate", "MRMP", "SRMP", "MRMP − SRMP (paired)", f"within {MARGIN_SEEN:g} points"], rows
            ),
            "",
        ]
    return out


def verdicts(runs: Runs, protocol: dict[str, Any], dataset: str) -> list[str]:
    """One line per claim, with its interval and its rule."""
    lines = []
    srmp = single_rate(protocol, protocol["tables"]["srmp"])
    for c in mrmp_configs(protocol):
        label = c["label"]
        if not runs.keys(label, dataset) or c.get("verdict") is False:
            continue
        chk = mrmp_checks(runs, protocol, label, dataset)
        misses = [
            f"{r:.2f} ({fmt(d, signed=True)}, {v})" for r, (d, v) in chk["per_rate"].items() if v != "holds"
        ]
        ok = not misses and len(chk["per_rate"]) == len(srmp)
        failed = any(v == "fails" for _, v in chk["per_rate"].values())
        verdict = "HOLDS" if ok else "DOES NOT HOLD" if failed else "NOT SHOWN"
        lines.append(
            f"- **`{label}` within {MARGIN_SEEN:g} points of SRMP at every seen rate** (rule: the 95 % interval of "
            f"the paired difference lies above −{MARGIN_SEEN:g}): {verdict}: shown at "
            f"{len(chk['per_rate']) - len(misses)}/{len(chk['per_rate'])} seen rates"
            + (f"; not at {', '.join(misses)}" if misses else "")
        )
        g = chk["gap_runs"]
        m, h, n = interval([100 * x for x in g]) if g else (float("nan"), float("nan"), 0)
        v = (
            "HOLDS"
            if n and m - h >= -MARGIN_UNSEEN
            else "DOES NOT HOLD"
            if n and m + h < -MARGIN_UNSEEN
            else "NOT SHOWN"
        )
        lines.append(
            f"- **`{label}` unseen rates as good as the interpolation of their seen neighbours** (rule: the 95 % "
            f"interval of the mean gap lies above −{MARGIN_UNSEEN:g} point): {v}: {m:+.1f} ± {h:.1f} points over "
            f"{n} runs"
        )

    cost = protocol["tables"].get("cost") or {}
    mrmps = cost.get("mrmp", [])
    for label in [mrmps] if isinstance(mrmps, str) else mrmps:  # one MRMP configuration or several
        r = runs.cost_ratios(label, [cost["srmp"]], dataset)
        if r:
            m, h, n = interval(r)
            ok = "HOLDS" if m + h <= MAX_COST else "DOES NOT HOLD" if m - h > MAX_COST else "NOT SHOWN"
            lines.append(
                f"- **one MRMP training (`{label}`) costs ≤ {MAX_COST:g}× one SRMP training "
                f"(`{cost['srmp']}`)** (training CPU, run side by side per seed; rule: the 95 % interval of the "
                f"ratio lies below {MAX_COST:g}): {ok}: {m:.2f} ± {h:.2f}× over {n} pairs"
            )
    fid = fidelity_rows(runs, protocol, dataset)
    for label, prior, missed, worst in fid:
        lines.append(
            f"- **`{label}` ({prior}) observed rate within ±{TOLERANCE:g} point of the target at every rate 0.50–0.98"
            f"** (every run): {'HOLDS' if not missed else 'DOES NOT HOLD'}: worst |error| {worst:.2f} points"
            + (f", missed at {len(missed)} rates ({', '.join(f'{x:.2f}' for x in missed[:8])}{' …' if len(missed) > 8 else ''})" if missed else "")
        )  # fmt: skip
    for f in protocol["tables"]["fidelity_srmp"]:
        per = single_rate(protocol, f)
        errs = {r: [o - r for o in runs.values(lbl, dataset, r, "observed")] for r, lbl in per.items()}
        errs = {r: e for r, e in errs.items() if e}
        if not errs:
            continue
        worst = max(abs(e) * 100 for e in sum(errs.values(), []))
        missed = sorted(r for r, e in errs.items() if max(abs(x) for x in e) * 100 > TOLERANCE)
        lines.append(
            f"- **`{f}` observed rate within ±{TOLERANCE:g} point at its trained rates {', '.join(f'{r:.2f}' for r in sorted(errs))}"
            f"** (every run): {'HOLDS' if not missed else 'DOES NOT HOLD'}: worst |error| {worst:.2f} points"
            + (f"; missed at {', '.join(f'{r:.2f}' for r in missed)}" if missed else "")
        )  # fmt: skip
    for f in protocol["tables"].get("zero_disconnected", []):
        per = single_rate(protocol, f)
        disc = [x for r, lbl in per.items() for x in runs.values(lbl, dataset, r, "disconnected")]
        if disc:
            lines.append(
                f"- **`{f}` keeps zero disconnected connections**: {'HOLDS' if max(disc) == 0 else 'DOES NOT HOLD'}: "
                f"max {max(disc):.0f} over {len(disc)} runs × rates"
            )
    for comp in protocol["tables"].get("comparisons", []):
        for rate in comp["rates"]:
            la = single_rate(protocol, comp["a"]).get(round(rate, 4), comp["a"])
            lb = single_rate(protocol, comp["b"]).get(round(rate, 4), comp["b"])
            d = runs.paired(la, lb, dataset, rate)
            if d:
                v = within(d, 0.0)
                lines.append(
                    f"- **{comp['claim']} at {rate:.2f}** (rule: the 95 % interval of the paired difference ≥ 0): "
                    f"{v.upper()}: {fmt(d, signed=True)} points over {len(d)} runs"
                )
    return lines


def unseen_gaps(runs: Runs, label: str, dataset: str) -> list[dict[float, float]]:
    """Per run, each unseen rate strictly between two seen ones: test(u) − linear interpolation of the two."""
    out = []
    for k in runs.keys(label, dataset):
        curve = runs.curves[label][k]
        seen = sorted(r for r, row in curve.items() if row["seen"])
        gaps = {}
        for u, row in curve.items():
            if row["seen"] or u <= seen[0] or u >= seen[-1]:
                continue
            lo = max(s for s in seen if s < u)
            hi = min(s for s in seen if s > u)
            interp = curve[lo]["test"] + (u - lo) / (hi - lo) * (curve[hi]["test"] - curve[lo]["test"])
            gaps[u] = row["test"] - interp
        out.append(gaps)
    return out


def describe(config: dict[str, Any]) -> str:
    keys = {k: v for k, v in config["method"].items() if k != "name"}
    extra = {f"{s}.{k}": v for s in ("train",) for k, v in config.get(s, {}).items()}
    return ", ".join(f"{k}={v}" for k, v in {**keys, **extra}.items()) or "defaults"


def fidelity_rows(
    runs: Runs, protocol: dict[str, Any], dataset: str
) -> list[tuple[str, str, list[float], float]]:
    """Per MRMP configuration: (label, prior, rates 0.50–0.98 where some run misses by more than TOLERANCE,
    worst |error| in points)."""
    out = []
    for c in mrmp_configs(protocol):
        label = c["label"]
        if not runs.keys(label, dataset):
            continue
        errs: dict[float, list[float]] = defaultdict(list)
        for k in runs.keys(label, dataset):
            for r, row in runs.curves[label][k].items():
                if 0.5 - 1e-9 <= r <= 0.98 + 1e-9:
                    errs[r].append(100 * (row["observed"] - r))
        missed = sorted(r for r, v in errs.items() if max(abs(e) for e in v) > TOLERANCE)
        worst = max(abs(e) for v in errs.values() for e in v)
        out.append((label, prior_of(c["method"]), missed, worst))
    return out


def prior_of(method: dict[str, Any]) -> str:
    """The prior a configuration trains with: its own `prior` key, else its method's default."""
    if "prior" in method:
        return str(method["prior"])
    from mrmp.methods import registry

    return str(registry.get(method["name"]).Params().prior)


def fidelity_tables(runs: Runs, protocol: dict[str, Any], dataset: str) -> list[str]:
    """Observed − target rate (points) per prior: SRMP at each trained rate (each run's own network), and every
    MRMP configuration over the whole grid 0.50–0.98, seen or unseen."""
    out = []
    srmp_families = [f for f in protocol["tables"]["fidelity_srmp"] if single_rate(protocol, f)]
    rates = sorted({r for f in srmp_families for r in single_rate(protocol, f)})
    rows = []
    for f in srmp_families:
        per = single_rate(protocol, f)
        cells, worst, any_data = [f], 0.0, False
        for r in rates:
            obs = runs.values(per[r], dataset, r, "observed") if r in per else []
            errs = [o - r for o in obs]
            any_data |= bool(errs)
            worst = max([worst, *(abs(e) * 100 for e in errs)])
            cells.append(fmt(errs, digits=2, signed=True) if errs else "–")
        acc = [
            fmt(runs.values(per[r], dataset, r)) if r in per and runs.values(per[r], dataset, r) else "–"
            for r in rates
        ]
        if any_data:
            rows.append([*cells, f"{worst:.2f}", "holds" if worst <= TOLERANCE else "fails"])
            rows.append([f"{f}: test accuracy (%)", *acc, "", ""])
    out += [
        f"SRMP, observed − target rate (points), mean ± 95 % interval over runs, and the same runs' test accuracy; "
        f"worst = the largest |error| of any run; holds = every run within ±{TOLERANCE:g}.",
        "",
        *md_table(
            ["configuration", *[f"{r:.2f}" for r in rates], "worst", f"±{TOLERANCE:g} everywhere"], rows
        ),
        "",
    ]
    rows = []
    for label, prior, missed, _worst in fidelity_rows(runs, protocol, dataset):
        seen_e = [
            abs(100 * (runs.curves[label][k][r]["observed"] - r))
            for k in runs.keys(label, dataset)
            for r in runs.curves[label][k]
            if runs.curves[label][k][r]["seen"] and 0.5 - 1e-9 <= r <= 0.98 + 1e-9
        ]
        unseen_e = [
            abs(100 * (runs.curves[label][k][r]["observed"] - r))
            for k in runs.keys(label, dataset)
            for r in runs.curves[label][k]
            if not runs.curves[label][k][r]["seen"] and 0.5 - 1e-9 <= r <= 0.98 + 1e-9
        ]
        listed = ", ".join(f"{r:.2f}" for r in missed[:12]) + (" …" if len(missed) > 12 else "")
        rows.append(
            [f"`{label}`", prior, f"{max(seen_e):.2f}", f"{max(unseen_e):.2f}",
             f"{len(missed)}" + (f" ({listed})" if missed else ""), "holds" if not missed else "fails"]
        )  # fmt: skip
    out += [
        "MRMP, every rate 0.50–0.98 of one training: worst |observed − target| (points) over runs, at the seen and "
        f"the unseen rates, and the rates where some run misses by more than {TOLERANCE:g} point.",
        "",
        *md_table(
            [
                "configuration",
                "prior",
                "worst seen",
                "worst unseen",
                "rates missed",
                f"±{TOLERANCE:g} everywhere",
            ],
            rows,
        ),
        "",
    ]
    return out


def _seen(runs: Runs, label: str, dataset: str, rate: float) -> bool:
    k = runs.keys(label, dataset)[0]
    return bool(runs.curves[label][k][rate]["seen"])


def comparison_table(runs: Runs, protocol: dict[str, Any], dataset: str) -> list[str]:
    """The protocol's `comparisons`: a single-rate family against another (or an any-rate baseline), paired."""
    rows = []
    for comp in protocol["tables"].get("comparisons", []):
        a, b = comp["a"], comp["b"]
        for rate in comp["rates"]:
            la = single_rate(protocol, a).get(round(rate, 4), a)
            lb = single_rate(protocol, b).get(round(rate, 4), b)
            d = runs.paired(la, lb, dataset, rate)
            if not d:
                continue
            rows.append(
                [comp["claim"], f"{rate:.2f}", fmt(runs.values(la, dataset, rate)), fmt(runs.values(lb, dataset, rate)),
                 fmt(d, signed=True), within(d, 0.0)]
            )  # fmt: skip
    return md_table(["claim", "rate", "A", "B", "A − B (paired)", "A ≥ B at 95 %"], rows) + [
        "",
        "holds = the whole 95 % interval of the paired difference is ≥ 0; fails = the whole interval is < 0; "
        "not shown = the interval crosses 0 (these runs cannot tell).",
    ]


def integrity_table(runs: Runs, protocol: dict[str, Any], dataset: str) -> list[str]:
    families = protocol["tables"]["integrity"]
    rates = protocol["tables"]["integrity_rates"]
    rows = []
    for f in families:
        per = single_rate(protocol, f)
        cells = [f]
        for r in rates:
            label = per.get(round(r, 4)) if per else f
            disc = runs.values(label, dataset, r, "disconnected") if label else []
            eff = runs.values(label, dataset, r, "effective") if label else []
            cells.append(
                f"{statistics.fmean(disc):.0f} (max {max(disc):.0f}) / {100 * statistics.fmean(eff):.2f}"
                if disc
                else "–"
            )
        rows.append(cells)  # fmt: skip
    return [
        "Cells: mean disconnected kept connections (max over runs) / mean effective rate (%): zero or disconnected.",
        "",
        *md_table(["configuration", *[f"{r:.2f}" for r in rates]], rows),
    ]


def ablation_table(runs: Runs, protocol: dict[str, Any], dataset: str) -> list[str]:
    """Each MRMP configuration's accuracy at a few rates, train accuracy and CPU (the sampling/rates ablation)."""
    rates = protocol["tables"]["ablation_rates"]
    rows = []
    for c in mrmp_configs(protocol):
        label = c["label"]
        if not runs.keys(label, dataset):
            continue
        tr = [next(iter(runs.curves[label][k].values()))["train_accuracy"] for k in runs.keys(label, dataset)]
        rows.append(
            [f"`{label}`", describe(c), *[fmt(runs.values(label, dataset, r)) for r in rates], fmt(tr),
             fmt(runs.cpu(label, dataset), 1.0)]
        )  # fmt: skip
    return md_table(["configuration", "keys", *[f"{r:.2f}" for r in rates], "train acc.", "CPU s"], rows)


# --- plots ---------------------------------------------------------------------------------------------------


def plot_accuracy(runs: Runs, protocol: dict[str, Any], dataset: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    for f in protocol["tables"]["accuracy"]:
        per = single_rate(protocol, f)
        if per:
            pts = [(r, runs.values(lbl, dataset, r)) for r, lbl in sorted(per.items())]
        else:
            k = runs.keys(f, dataset)
            rates = sorted(runs.curves[f][k[0]]) if k else []
            pts = [(r, runs.values(f, dataset, r)) for r in rates if r >= 0.5]
        pts = [(r, v) for r, v in pts if v]
        if not pts:
            continue
        xs = [r for r, _ in pts]
        m = [100 * statistics.fmean(v) for _, v in pts]
        h = [interval([100 * x for x in v])[1] if len(v) > 1 else 0.0 for _, v in pts]
        style = "o-" if per else "-"
        ax.plot(xs, m, style, label=f, markersize=3)
        ax.fill_between(xs, [a - b for a, b in zip(m, h)], [a + b for a, b in zip(m, h)], alpha=0.15)
    ax.set_xlabel("pruning rate")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{pretty(dataset)} (mean, 95 % interval)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fidelity(runs: Runs, protocol: dict[str, Any], dataset: str, path: Path) -> None:
    """Each MRMP configuration of `tables.fidelity_mrmp` (default: every one): the band between the lowest and
    the highest observed − target rate over its runs, at 0.50–0.98; tables.md has every configuration's numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = protocol["tables"].get("fidelity_mrmp")
    labels = [c["label"] for c in mrmp_configs(protocol) if chosen is None or c["label"] in chosen]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    colours = plt.get_cmap("tab10")
    for i, label in enumerate(labels):
        keys = runs.keys(label, dataset)
        if not keys:
            continue
        rates = sorted(r for r in runs.curves[label][keys[0]] if 0.5 - 1e-9 <= r <= 0.98 + 1e-9)
        worst = [max(100 * (runs.curves[label][k][r]["observed"] - r) for k in keys) for r in rates]
        best = [min(100 * (runs.curves[label][k][r]["observed"] - r) for k in keys) for r in rates]
        colour = colours(i % 10)
        ax.fill_between(rates, best, worst, color=colour, alpha=0.25, linewidth=0)
        ax.plot(rates, worst, "-", color=colour, linewidth=1, label=label)
        ax.plot(rates, best, "-", color=colour, linewidth=1)
    ax.axhline(1, color="k", linestyle=":")
    ax.axhline(-1, color="k", linestyle=":")
    ax.set_xlabel("target rate")
    ax.set_ylabel("observed − target (points)")
    ax.set_title(f"MRMP rate fidelity, {pretty(dataset)}: lowest to highest over runs")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------------------------


def summary_rows(runs: Runs) -> list[dict[str, Any]]:
    out = []
    for label, by_key in sorted(runs.curves.items()):
        ds_rates: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
        for (ds, _, _), curve in by_key.items():
            for r, row in curve.items():
                ds_rates[(ds, r)].append(row)
        for (ds, r), rows in sorted(ds_rates.items()):
            t = interval([x["test"] for x in rows])
            v = [x["val"] for x in rows if x["val"] is not None]
            out.append(
                {
                    "label": label,
                    "dataset": ds,
                    "rate": r,
                    "seen": rows[0]["seen"],
                    "runs": len(rows),
                    "test_mean": round(t[0], 4),
                    "test_ci95": round(t[1], 4) if not math.isnan(t[1]) else "",
                    "val_mean": round(statistics.fmean(v), 4) if v else "",
                    "observed_mean": round(statistics.fmean(x["observed"] for x in rows), 5),
                    "observed_min": round(min(x["observed"] for x in rows), 5),
                    "observed_max": round(max(x["observed"] for x in rows), 5),
                    "effective_mean": round(statistics.fmean(x["effective"] for x in rows), 5),
                    "disconnected_mean": round(statistics.fmean(x["disconnected"] for x in rows), 1),
                    "disconnected_max": max(x["disconnected"] for x in rows),
                    "cpu_s_mean": round(statistics.fmean(x["cpu"] for x in rows), 2),
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("protocol", type=Path)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    protocol = yaml.safe_load(args.protocol.read_text())
    rows: list[dict[str, str]] = []
    for p in args.runs:
        with p.open() as f:
            rows.extend(csv.DictReader(f))
    runs = Runs(rows)
    commits = sorted(
        {row["commit"] for by_key in runs.curves.values() for c in by_key.values() for row in c.values()}
    )
    diverged = sorted(
        {lbl for lbl, bk in runs.curves.items() for c in bk.values() for row in c.values() if row["diverged"]}
    )
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# results/methods: generated tables",
        "",
        f"Generated by `scripts/methods_tables.py` from {', '.join(p.name for p in args.runs)} (runs of "
        f"`scripts/methods_runs.py {args.protocol.name}`, code {', '.join(commits)}); do not edit: re-run the script. "
        "Synthetic data generated by mrmp: not SBU or FPHA results, and no number here is the papers'.",
        "",
    ]
    if diverged:
        lines += [f"Diverged runs (no curve): {', '.join(diverged)}.", ""]
    for ds in datasets(protocol):
        if not any(runs.keys(lbl, ds) for lbl in runs.curves):
            continue
        slug = ds.replace("synthetic-", "")
        plot_accuracy(runs, protocol, ds, out / f"accuracy_{slug}.png")
        plot_fidelity(runs, protocol, ds, out / f"fidelity_{slug}.png")
        lines += [
            f"## {pretty(ds)}",
            "",
            "### Verdicts",
            "",
            "HOLDS: the whole 95 % interval lies on the claim's side of its margin; DOES NOT HOLD: the whole "
            "interval lies on the other side (for every seen rate: at one rate at least); NOT SHOWN: the interval "
            "crosses the margin, so these runs cannot tell. Rate and connectivity claims are checked on every run.",
            "",
            *verdicts(runs, protocol, ds),
            "",
            "### Accuracy vs rate",
            "",
            *accuracy_table(runs, protocol, ds),
            "",
            f"![accuracy]({f'accuracy_{slug}.png'})",
            "",
            "### Claims against baselines (paired by fold and seed)",
            "",
            *comparison_table(runs, protocol, ds),
            "",
            "### MRMP against SRMP trained per seen rate",
            "",
            *mrmp_vs_srmp(runs, protocol, ds),
            "### Observed rate against the target, per prior",
            "",
            *fidelity_tables(runs, protocol, ds),
            f"![fidelity]({f'fidelity_{slug}.png'})",
            "",
            "### Disconnected connections and effective rate",
            "",
            *integrity_table(runs, protocol, ds),
            "",
            "### MRMP configurations (rates per step, sampling, distillation, bins)",
            "",
            *ablation_table(runs, protocol, ds),
            "",
        ]
    (out / "tables.md").write_text("\n".join(lines))
    summary = summary_rows(runs)
    with (out / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summary[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(summary)
    print(f"wrote {out / 'tables.md'} and {out / 'summary.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
