"""Pruned networks as MLflow models (`mrmp.tracking.models`) on a local sqlite store in tmp_path.

The store is created once, in this process, before anything logs to it (stack notes: one process creates the
schema). Every call passes the URI and ids explicitly; the process-wide tracking URI points at a "stray" store
that must stay untouched.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mlflow")

from mrmp.testing.contract import toy_config, toy_data  # noqa: E402
from mrmp.tracking.models import (  # noqa: E402
    DEFAULT_DESCRIPTION,
    MODEL_TYPE,
    latest_version,
    log_and_register,
    log_network_model,
    register_network_model,
)
from mrmp.train import run  # noqa: E402
from mrmp.train.export import load_network, write_network  # noqa: E402

NAME = "toy-sweep"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(uri, client, stray path, networks): a fresh sqlite store with one experiment and one run, and the
    network files of a trained MRMP network (rates 0.9 and 0.5) and a trained SRMP one (0.9)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("store")
    stray = root / "stray.db"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{stray}")  # what a global lookup would hit
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("toy", artifact_location=(root / "artifacts").as_uri())
    data = toy_data()
    nets = {}
    for name, params in (("mrmp", {}), ("srmp", {"rate": 0.9})):
        trainer = run(toy_config(name, epochs=20, **params), data).trainer
        rates = (0.9, 0.5) if name == "mrmp" else (None,)
        nets[name] = [write_network(trainer, root / f"{name}-{r}.pt", r).path for r in rates]
    yield uri, client, exp, stray, nets, data
    mp.undo()


@pytest.fixture(scope="module")
def logged(store):
    uri, client, exp, _, nets, data = store
    run_id = client.create_run(exp, run_name="trial-mrmp").info.run_id
    model = log_network_model(uri, run_id, nets["mrmp"], input_example=data.x_test[:2])
    version = register_network_model(uri, model, NAME)
    return model, version


def test_the_registered_model_loads_through_pyfunc_and_is_the_network(store, logged):
    import mlflow
    from mlflow.entities import LoggedModelStatus

    uri, client, exp, stray, nets, data = store
    model, version = logged
    pm = mlflow.pyfunc.load_model(client.get_model_version_download_uri(NAME, version.version))
    x = data.x_test
    with torch.no_grad():
        want = {
            r: load_network(f).module(torch.as_tensor(x)).numpy() for r, f in zip((0.9, 0.5), nets["mrmp"])
        }
    np.testing.assert_array_equal(pm.predict(x), want[0.9])  # the first file's rate is the default
    np.testing.assert_array_equal(pm.predict(x, params={"rate": 0.5}), want[0.5])
    with pytest.raises(ValueError, match=r"holds the network at rate 0.5, 0.9; got rate=0.7"):
        pm.predict(x, params={"rate": 0.7})
    sig = pm.metadata.signature
    assert sig.inputs.to_dict()[0]["tensor-spec"] == {"dtype": "float32", "shape": (-1, 10, 12)}
    assert sig.outputs.to_dict()[0]["tensor-spec"] == {"dtype": "float32", "shape": (-1, 3)}
    assert sig.params.to_dict()[0] == {"name": "rate", "default": 0.9, "shape": None, "type": "double"}
    np.testing.assert_allclose(np.asarray(pm.input_example), data.x_test[:2])
    # the model lives in the run's experiment (not MLflow's "Default"), READY, linked to the run
    lm = client.get_logged_model(model.model_id)
    assert (
        lm.experiment_id == exp and lm.source_run_id == model.run_id and lm.status == LoggedModelStatus.READY
    )
    assert lm.model_type == MODEL_TYPE
    assert [o.model_id for o in client.get_run(model.run_id).outputs.model_outputs] == [model.model_id]
    assert not stray.exists()  # nothing went through the process-wide tracking URI


def test_version_tags_say_what_a_reader_compares(store, logged):
    _, client, _, _, nets, _ = store
    model, version = logged
    info = load_network(nets["mrmp"][0]).info
    tags = version.tags
    assert tags["method"] == "mrmp" and tags["rate"] == "0.9" and tags["trained_rates"] == "any"
    assert tags["val_accuracy"] == f"{info.val_accuracy:.4f}"
    assert tags["test_accuracy"] == f"{info.test_accuracy:.4f}"
    assert tags["nonzero_params"] == str(info.nonzero) and int(tags["nonzero_params"]) < info.params
    assert tags["size_bytes"] == str(nets["mrmp"][0].stat().st_size)
    other = load_network(nets["mrmp"][1]).info
    size = nets["mrmp"][1].stat().st_size
    assert tags["at 0.5"] == f"val {other.val_accuracy:.4f}, test {other.test_accuracy:.4f}, {size:,} B"
    assert tags["data"] == "toy"  # not a registered dataset: its name as it is
    assert version.run_id == model.run_id and "mrmp pruned at rate 0.9" in version.description
    assert "mrmp" in version.aliases
    registered = client.get_registered_model(NAME)
    assert registered.description == DEFAULT_DESCRIPTION


def test_latest_version_per_name_and_method(store, logged):
    uri, client, exp, stray, nets, _ = store
    first = logged[1]
    run_id = client.create_run(exp, run_name="trial-srmp").info.run_id
    second = log_and_register(uri, run_id, nets["srmp"], NAME)
    assert int(second.version) == int(first.version) + 1
    assert second.tags["trained_rates"] == "0.9" and second.tags["method"] == "srmp"
    assert not [k for k in second.tags if k.startswith("at ")]  # one rate: no per-rate tags
    assert latest_version(uri, NAME).version == second.version
    assert latest_version(uri, NAME, "mrmp").version == first.version
    assert latest_version(uri, NAME, "tcmp") is None and latest_version(uri, "no-such-model") is None
    assert client.get_model_version_by_alias(NAME, "srmp").version == second.version
    assert not stray.exists()


def test_synthetic_data_is_never_passed_off_as_the_real_dataset():
    from mrmp.tracking.models import _data_note

    assert _data_note("synthetic-sbu") == "synthetic SBU-like, not SBU"
    assert _data_note("synthetic-fpha") == "synthetic FPHA-like, not FPHA"
    assert _data_note("sbu") == "sbu"


def test_files_of_different_networks_are_refused(store):
    uri, client, exp, _, nets, _ = store
    run_id = client.create_run(exp, run_name="mixed").info.run_id
    with pytest.raises(ValueError, match="is not the same network"):
        log_network_model(uri, run_id, [nets["mrmp"][0], nets["srmp"][0]])
