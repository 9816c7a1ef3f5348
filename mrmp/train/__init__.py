"""Training, per-rate evaluation and the single run entry point (torch and numpy only)."""

from .data import PreparedData, prepare_data
from .evaluate import CURVE_COLUMNS, CurvePoint, evaluate_curve
from .loop import EpochEvent, Trainer, resolve_device
from .run import RunResult, curve_csv, load_run, run, write_outputs

__all__ = [
    "CURVE_COLUMNS",
    "CurvePoint",
    "EpochEvent",
    "PreparedData",
    "RunResult",
    "Trainer",
    "curve_csv",
    "evaluate_curve",
    "load_run",
    "prepare_data",
    "resolve_device",
    "run",
    "write_outputs",
]
