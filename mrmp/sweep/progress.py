"""What a sweep prints while it runs: a line per trial start and end (method, sampled values, score with its
interval) and a status table every `every_s` seconds, after the banner (`views.banner`). Ray Tune's own output
is off; this replaces it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from ray import tune

from .spec import SweepSpec
from .trial import EPOCH, OUTCOME, PAYLOAD


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class Progress(tune.Callback):
    """One line per trial start and end, a status table every `every_s` seconds (driver side)."""

    def __init__(
        self,
        spec: SweepSpec,
        total: int,
        study: Any = None,
        done: int = 0,
        every_s: float = 30.0,
        log: Callable[[str], None] = print,
    ):
        self.spec, self.total, self.study, self.every_s, self.log = spec, total, study, every_s, log
        self.done_before = done  # trials that ended in earlier launches
        self._names: dict[str, str] = {}
        self._last: dict[str, Mapping[str, Any]] = {}
        self._done: dict[str, str] = {}
        self._next = time.monotonic() + every_s

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "log": print}

    def _name(self, trial: Any) -> str:
        """The trial's name, as its tracking run has it: method and Optuna number."""
        if trial.trial_id not in self._names:
            method = self.spec.decode(dict(trial.config)).get(
                "method.name", self.spec.base_value("method.name")
            )
            number = self.study.number_of(trial.trial_id) if self.study is not None else None
            tail = f"{number:03d}" if number is not None else trial.trial_id.rsplit("_", 1)[-1]
            self._names[trial.trial_id] = f"{method}-{tail}"
        return self._names[trial.trial_id]

    def _values(self, config: Mapping[str, Any]) -> str:
        assignment = self.spec.decode(dict(config))
        return ", ".join(
            f"{k.split('.', 1)[1]}={_short(v)}" for k, v in assignment.items() if k != "method.name"
        )

    def _count(self) -> str:
        return f"[{self.done_before + len(self._done):>3}/{self.total}]"

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log(f"{self._count()} {self._name(trial)} started: {self._values(trial.config) or 'defaults'}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._last[trial.trial_id] = result
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every_s
            self.table(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        said = result.get(OUTCOME)
        if said == "completed":
            how = "completed: " + _score(self.spec, (result.get(PAYLOAD) or {}).get("scores") or {})
        elif said == "diverged":
            how = f"diverged: {(result.get(PAYLOAD) or {}).get('error', '')}"
        else:
            first = self.spec.objectives[0]
            value = result.get(first.key)
            shown = f"{value * 100:.1f} %" if isinstance(value, float) else "-"
            how = f"stopped early at epoch {result.get(EPOCH, 0)} (val {first.metric} {shown})"
        self._done[trial.trial_id] = said or "stopped_early"
        self.log(f"{self._count()} {self._name(trial)} {how}")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = (trial.get_error() or "").strip().splitlines()[-1:] or ["error"]
        self.log(
            f"{self._count()} {self._name(trial)} failed, retrying from its last checkpoint: {last[0][:160]}"
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._done[trial.trial_id] = "failed"
        last = (trial.get_error() or "").strip().splitlines()[-1:] or ["error"]
        self.log(f"{self._count()} {self._name(trial)} failed: {last[0][:200]}")

    def table(self, trials: list) -> None:
        """A compact status table: running trials with their epoch and current objective."""
        first = self.spec.objectives[0]
        running = [t for t in trials if t.trial_id not in self._done and t.trial_id in self._last]
        if not running:
            return
        self.log(f"{self._count()} running:")
        for t in running:
            r = self._last[t.trial_id]
            value = r.get(first.key)
            shown = f"{value * 100:5.1f} %" if isinstance(value, float) else "    -"
            self.log(f"      {self._name(t):<14} epoch {r.get(EPOCH, 0):>5}  val {first.metric} {shown}")


def _score(spec: SweepSpec, scores: Mapping[str, float]) -> str:
    from .lifecycle import describe_short

    return describe_short(spec, scores) or "no score"
