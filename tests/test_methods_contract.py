"""Every registered pruning method passes the shared contract (mrmp.testing.contract) on the toy problem."""

from __future__ import annotations

import pytest

from mrmp.methods import registry
from mrmp.testing import contract

NAMES = registry.names()


@pytest.fixture(scope="module")
def data():
    return contract.toy_data()


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """One toy run per method, trained once and shared by the checks (cheap: seconds in all)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            run_dir = tmp_path_factory.mktemp(f"run-{name}")
            cache[name] = (contract.trained(name, data, run_dir), run_dir)
        return cache[name]

    return get


def test_every_builtin_method_is_registered():
    assert {"dense", "mp", "random", "srmp", "mrmp", "tcmp"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_documented(name):
    contract.check_documented(name)


@pytest.mark.parametrize("name", NAMES)
def test_observed_rate_meets_target(name, runs):
    contract.check_rates(runs(name)[0])


@pytest.mark.parametrize("name", NAMES)
def test_integrity_columns(name, runs):
    contract.check_integrity_columns(runs(name)[0])


@pytest.mark.parametrize("name", NAMES)
def test_eval_masks_binary_and_nested(name, runs):
    result = runs(name)[0]
    contract.check_eval_masks(result.trainer.method, result.trainer.cfg.eval.rates)


@pytest.mark.parametrize("name", NAMES)
def test_train_masks(name, runs):
    contract.check_train_masks(runs(name)[0].trainer)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name, data, runs):
    contract.check_deterministic(name, data, runs(name)[0])


@pytest.mark.parametrize("name", NAMES)
def test_save_load_same_curve(name, data, runs):
    result, run_dir = runs(name)
    contract.check_save_load(name, data, result, run_dir)


@pytest.mark.parametrize("name", NAMES)
def test_disconnected_connections_are_inert_and_the_rest_are_not(name, runs):
    contract.check_disconnected_are_inert(runs(name)[0].trainer.method, contract.HIGH_RATES)
