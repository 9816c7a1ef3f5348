"""The small networks a sweep found: each method's best trial, pruned at its rates, as files whose size reflects
their sparsity (`mrmp.train.export`), logged as MLflow models and registered (`mrmp.tracking.models`).

A trial's run holds the trained network of its first unit (`model.pt`): a single-rate method's network is written
at the rate it trained for; one read at any rate (MRMP, MP without fine-tuning) at the sweep's target rates and a
few more, or at the rates asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mrmp.tracking import Tracker

from .results import TrialRecord, best_per_method, trials
from .state import SweepState

SHOWN_RATES = (0.5, 0.7, 0.9, 0.95, 0.98)  # also written for a network read at any rate


def rates_for(
    trainer: Any, targets: Sequence[float] | None, asked: Sequence[float] | None = None
) -> list[float]:
    """The rates to write a trained network at: its trained rate(s), or (read at any rate) `asked`, else the
    targets first and then SHOWN_RATES."""
    trained = type(trainer.method).trained_rates(trainer.method.params)
    if trained is not None:
        return list(trained)
    if asked:
        return list(asked)
    return list(dict.fromkeys([*(targets or []), *SHOWN_RATES]))


def write_networks(
    tracker: Tracker,
    record: TrialRecord,
    out: Path,
    targets: Sequence[float] | None,
    rates: Sequence[float] | None = None,
    prepare: Callable[[Any], Any] | None = None,
) -> list[Any]:
    """Write the trial's network at its rates (see `rates_for`) into `out`; returns the `NetworkFile`s.
    `prepare` maps the trial's data config to its PreparedData (default: prepare it again)."""
    from mrmp.train.export import load_trained, resolve_rate, write_network

    trainer = load_trained(tracker.read_artifact(record.run_id, "model.pt"), prepare=prepare)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for rate in rates_for(trainer, targets, rates):
        rate = resolve_rate(
            record.method, trainer.method.params, rate, f"{record.name} (run {record.run_id})"
        )
        files.append(write_network(trainer, out / f"{record.method}-{rate:g}.pt", rate))
    return files


def register_best(
    state: SweepState,
    tracker: Tracker,
    out: Path,
    log: Callable[[str], None] = print,
    prepare: Callable[[Any], Any] | None = None,
) -> list[Any]:
    """Log each method's best completed trial as an MLflow model of its run and register it as a version of
    `mrmp-<sweep>` (alias: the method). Returns the versions. `prepare`: see `write_networks` (the driver passes
    the datasets it prepared for the trials)."""
    import logging

    from mrmp.tracking.models import log_and_register

    if state.tracking.backend != "mlflow":
        return []
    logging.getLogger("mlflow.pyfunc").setLevel(logging.WARNING)  # "validating input example ..." per model
    versions = []
    name = f"mrmp-{state.name}"
    for method, record in best_per_method(trials(tracker, state), state.objectives[0]).items():
        files = write_networks(tracker, record, out / method, state.targets, prepare=prepare)
        version = log_and_register(state.tracking.uri, record.run_id, [f.path for f in files], name)
        rates = ", ".join(f"{f.info.rate:g}" for f in files)
        log(f"  registered {name} version {version.version} ({method}, {record.name}, rates {rates})")
        versions.append(version)
    return versions
