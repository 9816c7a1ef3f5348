"""`mrmp bench`: the performance suite of issue #7, every figure a ratio of timings taken in one run.

Items: (1) train step of each pruning method ÷ the dense step, with torch.nn.utils.prune's hooks beside it;
(2) achieved FLOP/s of a paper-preset step ÷ the machine's GEMM peak; (3) a 50-rate curve ÷ one dense
evaluation; (4) sweep wall ÷ (Σ trial times ÷ concurrency) and the per-trial overhead of Ray Tune + tracking,
beside Ray's own floor (`rayfloor`: the earliest a sweep on a local Ray could train, timed in a fresh process);
(5) MRMP training ÷ SRMP training; (6) the wall time of one 2700-epoch training. See docs/performance.md.

Only item 4 imports Ray (lazily, through the sweep entry point).
"""

from .suite import FIGURE_KEYS, GOALS, format_table, run_suite

__all__ = ["FIGURE_KEYS", "GOALS", "format_table", "run_suite"]
