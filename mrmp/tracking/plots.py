"""Accuracy-vs-rate plots (matplotlib, headless), validation and test kept apart.

- `estimates_png`: a trial's curve (or several): validation mean as a solid line with its 95 % band over
  repeats, test mean dashed; rates seen in training as filled markers; accuracy at rate 0 as a dotted level.
- `frontier_png`: per method, the best validation accuracy at each rate over all its trials, with the test
  accuracy of that same network beside it (hollow markers).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.4), dpi=110)
    return fig, fig.add_subplot()


def _png(fig, ax, title: str, ylabel: str) -> bytes:
    ax.set_xlabel("pruning rate")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _mean(e: Mapping[str, Any] | None) -> float | None:
    return None if e is None else e.get("mean")


def estimates_png(curves: Mapping[str, Sequence[Mapping[str, Any]]], title: str = "") -> bytes:
    """PNG of accuracy (%) against pruning rate; `curves` maps a label to per-rate rows (`rate`, `seen`, and
    `val`/`test` estimates: {mean, lo, hi} or None), as a trial records them."""
    fig, ax = _figure()
    for i, (label, rows) in enumerate(curves.items()):
        color = f"C{i % 10}"
        dense = [r for r in rows if r["rate"] == 0 and _mean(r["val"]) is not None]
        if dense:
            ax.axhline(_mean(dense[0]["val"]) * 100, color=color, ls=":", lw=1)
        pts = sorted((r for r in rows if r["rate"] > 0), key=lambda r: r["rate"])
        if not pts:
            continue
        x = [r["rate"] for r in pts]
        val = [_mean(r["val"]) for r in pts]
        test = [_mean(r["test"]) for r in pts]
        if all(v is not None for v in val):
            v = [a * 100 for a in val]
            if len(pts) > 1:
                ax.plot(x, v, "-", color=color, lw=1.5, label=f"{label}: validation")
            lo = [r["val"].get("lo") for r in pts]
            hi = [r["val"].get("hi") for r in pts]
            if all(a is not None for a in lo + hi):
                if len(pts) > 1:
                    ax.fill_between(
                        x, [a * 100 for a in lo], [a * 100 for a in hi], color=color, alpha=0.15, lw=0
                    )
                else:
                    ax.errorbar(
                        x, v, yerr=[[v[0] - lo[0] * 100], [hi[0] * 100 - v[0]]], color=color, capsize=3
                    )
            seen = [(a, b) for a, b, r in zip(x, v, pts) if r["seen"]]
            unseen = [(a, b) for a, b, r in zip(x, v, pts) if not r["seen"]]
            if seen:
                ax.plot(
                    *zip(*seen),
                    "o",
                    color=color,
                    ms=5,
                    label=None if len(pts) > 1 else f"{label}: validation",
                )
            if unseen and len(pts) > 1:
                ax.plot(*zip(*unseen), "o", color=color, ms=2.5, mfc="none")
        if all(t is not None for t in test):
            ax.plot(x, [t * 100 for t in test], "--" if len(pts) > 1 else "s", color=color, lw=1, mfc="none",
                    label=f"{label}: test")  # fmt: skip
    ax.set_ylim(0, 102)
    note = "filled: rates seen in training; band/bar: 95 % interval over repeats; dotted: rate 0"
    return _png(fig, ax, f"{title}\n{note}" if title else note, "accuracy (%)")


def frontier_png(frontiers: Mapping[str, Sequence[Mapping[str, Any]]], title: str = "") -> bytes:
    """PNG of each method's frontier: rows of `rate`, `val` (the best validation accuracy at that rate over
    its trials) and `test` (the test accuracy of that same network)."""
    fig, ax = _figure()
    for i, (method, rows) in enumerate(frontiers.items()):
        color = f"C{i % 10}"
        pts = sorted((r for r in rows if r["rate"] > 0 and r.get("val") is not None), key=lambda r: r["rate"])
        if not pts:
            continue
        x = [r["rate"] for r in pts]
        style = "-o" if len(pts) > 1 else "o"
        ax.plot(
            x,
            [r["val"] * 100 for r in pts],
            style,
            color=color,
            ms=4,
            lw=1.5,
            label=f"{method}: best validation",
        )
        tests = [(a, r["test"] * 100) for a, r in zip(x, pts) if r.get("test") is not None]
        if tests:
            ax.plot(*zip(*tests), "s", color=color, ms=4, mfc="none", label=f"{method}: its test")
    ax.set_ylim(0, 102)
    note = "per method: best validation accuracy at each rate over all trials; hollow: test of that network"
    return _png(fig, ax, f"{title}\n{note}" if title else note, "accuracy (%)")
