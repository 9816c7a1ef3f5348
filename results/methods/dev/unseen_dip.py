"""Why an MRMP network loses accuracy at unseen rates (dev/split.md, "Where the unseen rates' loss comes from"):
trains MRMP configurations with `mrmp.train.run` and, at every unseen rate r between two seen neighbours lo < r < hi,
scores the network three ways on the test clips: as MRMP evaluates it (the hi network plus the largest-magnitude
weights of the band a(lo) < |z| <= a(hi), the weights only the lo network keeps), with the same number of band
weights per layer drawn at random instead (mean of 5 draws), and the two neighbours themselves. One CSV row per
(run, unseen rate). Development evidence, not the protocol.

    python results/methods/dev/unseen_dip.py --shard 0/2 --out results/methods/dev/unseen-dip-0.csv  # and 1/2
    python results/methods/dev/unseen_dip.py --table  # the summary of dev/partial.md from those files
"""

from __future__ import annotations

import argparse
import csv
import glob
import sys
from pathlib import Path

import torch

from mrmp.config import config_from_dict
from mrmp.train import prepare_data, run

CONFIGS = {
    "mrmp-k1": {
        "name": "mrmp",
        "prior": "gaussian",
        "split_batch": False,
        "rates_per_step": 1,
        "partial_deltas": "none",
        "kl_every": 1,
    },
    "S-k4": {
        "name": "mrmp",
        "prior": "gaussian",
        "split_batch": True,
        "rates_per_step": 4,
        "partial_deltas": "none",
        "kl_every": 1,
    },
}
FOLDS, SEEDS = [1, 2, 3, 4, 5], [3, 4]
DRAWS = 5
COLUMNS = ["label", "fold", "seed", "rate", "lo", "hi", "magnitude", "random", "acc_lo", "acc_hi"]


@torch.no_grad()
def score(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, masks: list[torch.Tensor]) -> float:
    logits = model(x, [m.unsqueeze(0).float() for m in masks])[0]
    return float((logits.argmax(-1) == y).float().mean())


def table() -> None:
    """Per configuration: each run's mean gap (points) of its unseen rates to the linear interpolation of their two
    seen neighbours, scored as MRMP reads them and with random band weights, as mean ± 95 % t over runs; over all
    bands, the bands from 0.85 up and those below; then the unseen rates whose mean gap is below -3."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    def interval(x: pd.Series) -> str:
        h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return f"{x.mean():+.1f} ± {h:.1f}"

    d = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(str(Path(__file__).parent / "unseen-dip-*.csv"))))
    interp = d.acc_lo + (d.rate - d.lo) / (d.hi - d.lo) * (d.acc_hi - d.acc_lo)
    d["by_magnitude"], d["at_random"] = 100 * (d.magnitude - interp), 100 * (d.random - interp)
    cols = ["by_magnitude", "at_random"]
    print(
        "| configuration | bands | runs | magnitude-ordered − interpolation | random − interpolation | paired difference |"
    )
    print("|---|---|---|---|---|---|")
    for label, g in d.groupby("label", sort=False):
        for name, part in (("all", g), ("0.85-0.98", g[g.lo >= 0.85]), ("0.50-0.85", g[g.lo < 0.85])):
            runs = part.groupby(["fold", "seed"])[cols].mean()
            print(
                f"| {label} | {name} | {len(runs)} | {interval(runs.by_magnitude)} | {interval(runs.at_random)} | "
                f"{interval(runs.at_random - runs.by_magnitude)} |"
            )
    for label, g in d.groupby("label", sort=False):
        per_rate = g.groupby("rate")[cols].mean()
        worst = per_rate[per_rate.by_magnitude < -3]
        print(
            f"{label}: unseen rates below -3 (magnitude / random): "
            + ", ".join(f"{r:.2f} {a:+.1f} / {b:+.1f}" for r, (a, b) in worst.iterrows())
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--table", action="store_true", help="print the summary of the unseen-dip-*.csv files")
    args = ap.parse_args(argv)
    if args.table:
        table()
        return 0
    if not args.out:
        ap.error("--out is required to run")
    index, count = (int(v) for v in args.shard.split("/"))
    jobs = [(label, f, s) for label in CONFIGS for f in FOLDS for s in SEEDS][index::count]
    torch.set_num_threads(1)
    with open(args.out, "w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        out.writeheader()
        for label, fold, seed in jobs:
            raw = {
                "model": {"preset": "small"},
                "train": {"threads": 1, "device": "cpu", "seed": seed},
                "data": {"name": "synthetic-sbu", "fold": fold},
                "method": CONFIGS[label],
            }
            cfg = config_from_dict(raw, source=f"unseen_dip:{label}")
            data = prepare_data(cfg.data)
            method = run(cfg, data).trainer.method
            model = method.model.eval()
            x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
            ws = [w.detach() for w in model.prunable_weights()]
            seen = method.seen_rates()
            gen = torch.Generator().manual_seed(seed)
            for lo, hi in zip(seen, seen[1:]):
                t_lo, t_hi = (method.thresholds([lo])[0][0], method.thresholds([hi])[0][0])  # global scope
                base = [w.abs() > t_hi for w in ws]
                band = [(w.abs() > t_lo) & ~b for w, b in zip(ws, base)]
                acc_lo = score(model, x, y, [b | d for b, d in zip(base, band)])
                acc_hi = score(model, x, y, base)
                n = round((hi - lo) * 100)
                for i in range(1, n):
                    r = round(lo + i / 100, 2)
                    mag = method.eval_masks_batch([r])
                    mag = [m[0] > 0 for m in mag]
                    acc_mag = score(model, x, y, mag)
                    draws = []
                    for _ in range(DRAWS):
                        masks = []
                        for b, d, m in zip(base, band, mag):
                            k = int((m & d).sum())  # band weights this layer keeps at r
                            idx = d.flatten().nonzero().squeeze(-1)
                            pick = idx[torch.randperm(len(idx), generator=gen)[:k]]
                            extra = torch.zeros(d.numel(), dtype=torch.bool)
                            extra[pick] = True
                            masks.append(b | extra.view_as(d))
                        draws.append(score(model, x, y, masks))
                    out.writerow(
                        {
                            "label": label,
                            "fold": fold,
                            "seed": seed,
                            "rate": f"{r:.2f}",
                            "lo": lo,
                            "hi": hi,
                            "magnitude": f"{acc_mag:.6f}",
                            "random": f"{sum(draws) / DRAWS:.6f}",
                            "acc_lo": f"{acc_lo:.6f}",
                            "acc_hi": f"{acc_hi:.6f}",
                        }
                    )
            fh.flush()
            print(label, fold, seed, "done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
