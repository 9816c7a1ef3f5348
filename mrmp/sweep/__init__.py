"""Sweeps: sweep files (`spec`), curve objectives, the trial wrapper, the Ray Tune + Optuna driver, read-back.

Importing `mrmp.sweep` or `mrmp.sweep.spec` never imports Ray, Optuna or MLflow (`mrmp validate` relies on it);
`runner` and `trial` import them lazily, inside the functions that need them.
"""

from .spec import Objective, Param, SweepSpec, load_sweep

__all__ = ["Objective", "Param", "SweepSpec", "load_sweep"]
