"""`mrmp verify`: do published numbers still reproduce? Re-train what an export manifest selected (every unit of
each trial: its repeats and target rates, from their recorded configs) and compare the new validation mean with
the published 95 % interval.

A published score reproduces when the re-run's mean falls inside its interval (a score of one repeat has no
interval: it must come back exactly, to 1e-6). Training is deterministic for a seed and thread count, so on the
same code and machine the re-run is exact; after a change that should compute the same thing, the interval
says how far seed-to-seed noise alone moves the mean.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrmp.stats import Estimate, estimate, interval_text

from .objectives import merge_units, metric_value


@dataclass
class Check:
    file: str
    metric: str
    published: dict[str, Any]
    rerun: Estimate | None = None
    rerun_test: Estimate | None = None
    units: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def reproduces(self) -> bool:
        if self.rerun is None or self.published.get("mean") is None:
            return False
        ci = self.published.get("ci95")
        if ci and None not in ci:
            return ci[0] - 1e-9 <= self.rerun.mean <= ci[1] + 1e-9
        return abs(self.rerun.mean - self.published["mean"]) <= 1e-6


def verify(
    manifest: str | Path,
    only: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> list[Check]:
    """Re-run the entries of an export manifest (those whose method or file is in `only`, default all)."""
    from mrmp.config import config_from_dict
    from mrmp.train import run

    path = Path(manifest)
    doc = json.loads(path.read_text(encoding="utf-8"))
    checks = []
    for entry in doc["entries"]:
        if only and entry["method"] not in only and entry["file"] not in only:
            continue
        units = entry.get("unit_configs") or []
        check = Check(entry["file"], entry["metric"], entry.get("validation") or {}, units=len(units))
        if not units:
            check.notes.append("the manifest has no unit configs (exported by an older mrmp)")
            checks.append(check)
            continue
        log(f"verify {entry['file']}: {len(units)} training(s) of {entry['trial']} ({entry['metric']})")
        groups: dict[str, list[Any]] = {}
        for u in units:
            cfg = config_from_dict(u["config"], f"{path} ({entry['file']})")
            groups.setdefault(json.dumps(u["repeat"], sort_keys=True), []).append(run(cfg).curve)
        repeats = [merge_units(c) for c in groups.values()]
        targets = entry.get("targets")
        for split, attr in (("val", "rerun"), ("test", "rerun_test")):
            values = [metric_value(entry["metric"], c, targets, split) for c in repeats]
            if values and None not in values:
                setattr(check, attr, estimate(values))
        checks.append(check)
    return checks


def table(checks: list[Check]) -> list[str]:
    """A markdown table of the checks."""

    def pub(p: dict[str, Any]) -> str:
        if p.get("mean") is None:
            return "–"
        ci = p.get("ci95")
        if ci and None not in ci:  # the form every other view uses: ± half-width, clipped past 0–100 %
            return interval_text(p["mean"], ci[0], ci[1])
        return f"{p['mean'] * 100:.2f}"

    lines = [
        "| file | metric | published validation (95 % interval) | re-run validation | re-run test | reproduces |",
        "|---|---|---|---|---|---|",
    ]
    for c in checks:
        rerun = "–" if c.rerun is None else c.rerun.format(digits=2 if c.rerun.lo is None else 1)
        test = "–" if c.rerun_test is None else c.rerun_test.format()
        verdict = "yes" if c.reproduces else "NO" + (f" ({'; '.join(c.notes)})" if c.notes else "")
        lines.append(f"| {c.file} | {c.metric} | {pub(c.published)} | {rerun} | {test} | {verdict} |")
    return lines
