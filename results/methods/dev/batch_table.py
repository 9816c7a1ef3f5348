"""The small-batch MRMP runs of dev/batch.md against SRMP and the default MRMP, in split_table.py's columns
(screen: folds 1-3 x seeds 0-1; held-out: folds 1-5 x seeds 3-4). Development evidence.

    python results/methods/dev/batch_table.py
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from split_table import table  # noqa: E402

if __name__ == "__main__":
    table(pd.concat(pd.read_csv(f) for f in sorted(glob.glob(str(HERE / "batch*-runs-*.csv")))))
