"""Compare a recheck CSV's rows with the published rows of results/methods (same label, dataset, fold, seed and
rate): every accuracy, observed and effective rate and disconnected count must be equal as written.

    python results/methods/dev/recheck.py results/methods/dev/recheck-kl-every.csv
    python results/methods/dev/recheck.py results/methods/dev/recheck-calibration.csv 'dev/earlier/calibrated-runs-*.csv'

The second argument picks the published files (results/methods/<pattern>; default dev/earlier/runs-*.csv, the rows before
MRMP's calibration: a recheck made before it names that default `mrmp`, as calibrated-runs-* name the new one).
"""

from __future__ import annotations

import csv
import glob
import sys
from pathlib import Path

HERE = Path(__file__).parent
KEY = ("label", "dataset", "fold", "seed", "rate")
VALUES = ("val_accuracy", "test_accuracy", "observed_rate", "effective_rate", "disconnected")


def main(path: str, pattern: str = "dev/earlier/runs-*.csv") -> int:
    published = {}
    for f in sorted(glob.glob(str(HERE.parent / pattern))):
        for row in csv.DictReader(open(f)):
            published.setdefault(tuple(row[k] for k in KEY), row)
            # the defaults before the calibration (2026-11-30) were relabelled `<label>-nocal`: rechecks made
            # before then name them by their label at the time
            if row["label"].endswith("-nocal"):
                old = {**row, "label": row["label"].removesuffix("-nocal")}
                published.setdefault(tuple(old[k] for k in KEY), row)
    rows = list(csv.DictReader(open(path)))
    missing = [r for r in rows if tuple(r[k] for k in KEY) not in published]
    differ = [
        r
        for r in rows
        if tuple(r[k] for k in KEY) in published
        and any(r[v] != published[tuple(r[k] for k in KEY)][v] for v in VALUES)
    ]
    print(
        f"{len(rows)} rows: {len(rows) - len(missing) - len(differ)} equal, {len(differ)} differ, "
        f"{len(missing)} not published"
    )
    for r in differ[:10]:
        p = published[tuple(r[k] for k in KEY)]
        print("  ", *(r[k] for k in KEY), *(f"{v} {p[v]} -> {r[v]}" for v in VALUES if r[v] != p[v]))
    return 1 if differ or missing else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
