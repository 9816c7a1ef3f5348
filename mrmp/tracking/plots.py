"""Accuracy-vs-rate plots (matplotlib, headless): one curve per label over the pruned rates, seen rates as
filled markers, the dense accuracy (rate 0) as a dotted level."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any


def curves_png(curves: Mapping[str, Sequence[Any]], title: str = "") -> bytes:
    """PNG bytes of accuracy against pruning rate; `curves` maps a label to points with rate/accuracy/seen."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=110)
    ax = fig.add_subplot()
    for i, (label, points) in enumerate(curves.items()):
        pts = sorted((p for p in points if p.rate > 0), key=lambda p: p.rate)
        color = f"C{i % 10}"
        dense = [p for p in points if p.rate == 0]
        if dense:  # the unpruned network: a dotted level, not a point joined to the pruned range
            ax.axhline(dense[0].test_accuracy, color=color, ls=":", lw=1)
        if not pts:
            continue
        ax.plot([p.rate for p in pts], [p.test_accuracy for p in pts], "-", color=color, lw=1.4, label=label)
        seen = [p for p in pts if p.seen]
        unseen = [p for p in pts if not p.seen]
        ax.plot(
            [p.rate for p in unseen], [p.test_accuracy for p in unseen], "o", color=color, ms=2.5, mfc="none"
        )
        ax.plot([p.rate for p in seen], [p.test_accuracy for p in seen], "o", color=color, ms=5)
    ax.set_xlabel("pruning rate (filled markers: rates seen in training; dotted: accuracy at rate 0)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    if curves:
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
