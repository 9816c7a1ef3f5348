"""unseen_gains_probe.py's (or unseen_order_probe.py's) CSVs -> per rule (in the files' order), the runs' mean accuracy over the unseen rates 0.51-0.97 and their
gap to the linear interpolation of their seen neighbours (mean over runs +- 95 % t), then the gap by position
between the neighbours (the code's rule)."""

from __future__ import annotations

import csv
import statistics as st
import sys
from collections import defaultdict

from scipy import stats


def main(paths: list[str]) -> None:
    rows = [r for f in paths for r in csv.DictReader(open(f, encoding="utf-8"))]
    rules = list(dict.fromkeys(r["rule"] for r in rows))
    acc: dict[str, dict[tuple[float, str], float]] = defaultdict(dict)
    for r in rows:
        acc[r["seed"]][(float(r["rate"]), r["rule"])] = 100 * float(r["test"])
    seen = sorted({float(r["rate"]) for r in rows if r["seen"] == "1"})
    by_position: dict[float, list[float]] = defaultdict(list)
    print("| rule | runs | unseen mean acc. | unseen − interpolation |\n|---|---|---|---|")
    for rule in rules:
        gaps, absolute = [], []
        for a in acc.values():
            g, ab = [], []
            for (rate, ru), v in a.items():
                if ru != rule or rate in seen or not 0.51 <= rate <= 0.97:
                    continue
                hi = min(s for s in seen if s > rate)
                lo = max(s for s in seen if s < rate)
                t = (rate - lo) / (hi - lo)
                gap = v - ((1 - t) * a[(lo, "rate")] + t * a[(hi, "rate")])
                g.append(gap)
                ab.append(v)
                if rule == "rate":
                    by_position[round(t, 2)].append(gap)
            gaps.append(st.mean(g))
            absolute.append(st.mean(ab))
        n = len(gaps)
        h = stats.t.ppf(0.975, n - 1) * st.stdev(gaps) / n**0.5
        print(f"| {rule} | {n} | {st.mean(absolute):.1f} | {st.mean(gaps):+.1f} ± {h:.1f} |")
    print(
        "\n| position between the seen neighbours | rate-points | unseen − interpolation (mean) |\n|---|---|---|"
    )
    for t in sorted(by_position):
        print(f"| {t} | {len(by_position[t])} | {st.mean(by_position[t]):+.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
