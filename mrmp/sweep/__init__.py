"""Sweeps: the sweep file (`spec`, `schema`, `space`, `checks`), objectives and scores (`objectives`), one trial
in its worker (`trial`), the trial lifecycle in the driver (`lifecycle`), Ray Tune and Optuna (`hooks`,
`searcher`, `driver`), and reading a sweep back (`state`, `results`, `report`, `export`).

Importing `mrmp.sweep` or `mrmp.sweep.spec` never imports Ray, Optuna or MLflow (`mrmp validate` relies on it):
the modules that need them (`driver`, `hooks`, `searcher`, `progress`) are imported only by whoever runs a sweep.
"""

from .objectives import Objective
from .spec import SweepSpec, Unit, load_sweep
from .state import SweepState, open_sweep

__all__ = ["Objective", "SweepSpec", "SweepState", "Unit", "load_sweep", "open_sweep"]
