"""Pruned networks as MLflow models, registered in the Model Registry (MLflow imported lazily).

`log_network_model(uri, run_id, files)` logs one or more network files of one trained network (written by
`mrmp.train.export`; one file per rate, e.g. an MRMP network at 0.5, 0.9 and 0.98) as an MLflow model of the
run: a pyfunc whose loader (`_load_pyfunc` below: MLflow's `loader_module` protocol) reads the files with
`torch.load(..., weights_only=True)`. Nothing is pickled: the model folder holds the network files, the MLmodel
file (signature: float32 (batch, nodes, features) in, float32 (batch, classes) logits out, and a `rate`
parameter that picks the file), an input example and the requirements. `register_network_model` then makes it
a version of a registered model, with tags a reader can compare versions by (method, rates, validation and test
accuracy, non-zero parameters, size on disk) and an alias per method; `latest_version` finds the newest.

Every call takes the tracking URI and ids explicitly: no active run, experiment or tracking URI is set or read
globally (MLflow's fluent `log_model` would put the model in the experiment that is active in the process,
"Default" unless set, instead of the run's).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from mrmp.train.export import LoadedNetwork

MODEL_TYPE = "mrmp-pruned-gcn"
NETWORKS_DIR = "networks"  # the model folder's data: one network file per rate


@dataclass(frozen=True)
class LoggedNetworkModel:
    """An MLflow model of one network, logged to a run."""

    model_id: str
    model_uri: str  # models:/<model_id>
    artifact_location: str  # where its files are (the model folder)
    run_id: str
    experiment_id: str
    method: str
    rates: list[float]  # the rates it holds a file for; the first is the default of `predict`
    infos: dict[float, Any]  # rate -> NetworkInfo
    bytes: dict[float, int]  # rate -> size on disk of that rate's network file


def _rate_name(rate: float) -> str:
    return f"rate-{rate:.4f}.pt"


def _data_note(dataset: str) -> str:
    """The dataset's name; for synthetic data, what it imitates and that it is not that dataset."""
    from mrmp.data import DATASETS

    entry = DATASETS.get(dataset)
    if entry is None or not entry.synthetic:
        return dataset
    like = entry.like.upper()
    return f"synthetic {like}-like, not {like}"  # short enough for the registry's tag column


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


# --- the pyfunc side: what mlflow.pyfunc.load_model runs ----------------------------------------------------


class PrunedNetworkModel:
    """The pyfunc implementation: the network files of one model, each rebuilt as a plain pruned module.

    `predict(x, params={"rate": r})` returns the logits (float32, (batch, classes)) of the network at rate `r`
    (default: the rate the model was registered for)."""

    def __init__(self, networks: dict[float, LoadedNetwork], default_rate: float):
        self.networks = networks
        self.default_rate = default_rate

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        import torch

        rate = float((params or {}).get("rate", self.default_rate))
        match = [r for r in self.networks if abs(r - rate) < 1e-6]
        if not match:
            have = ", ".join(f"{r:g}" for r in sorted(self.networks))
            raise ValueError(f"this model holds the network at rate {have}; got rate={rate:g}")
        x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        with torch.no_grad():
            return self.networks[match[0]].module(x).numpy()


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> PrunedNetworkModel:
    """MLflow's `loader_module` hook: build the model from its data folder (the network files)."""
    from mrmp.train.export import load_network

    networks = {}
    for file in sorted(Path(data_path).glob("*.pt")):
        net = load_network(file)
        networks[net.info.rate] = net
    default = float((model_config or {}).get("rate", min(networks)))
    return PrunedNetworkModel(networks, default)


# --- logging and registering -----------------------------------------------------------------------------------


def _signature(arch: dict[str, int], default_rate: float):
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    # unnamed tensors: predict takes and returns plain arrays (a named input would arrive as a dict)
    inputs = Schema([TensorSpec(np.dtype(np.float32), (-1, arch["num_nodes"], arch["in_features"]))])
    outputs = Schema([TensorSpec(np.dtype(np.float32), (-1, arch["num_classes"]))])
    params = ParamSchema([ParamSpec("rate", "double", default_rate)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def _requirements() -> list[str]:
    """What the model folder's requirements.txt lists. mrmp itself is one (the module class and the file
    format are its own); it installs from its source, so a serving environment must have it at hand."""
    from importlib.metadata import version

    import mrmp

    pins = [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "numpy", "pyyaml")]
    torch_version = version("torch").split("+")[0]  # a local build tag (+cpu, +cu126) is not on an index
    return [f"mrmp=={mrmp.__version__}", f"torch=={torch_version}", *pins]


def log_network_model(
    uri: str,
    run_id: str,
    files: Sequence[str | Path],
    name: str | None = None,
    input_example: np.ndarray | None = None,
) -> LoggedNetworkModel:
    """Log the network files `files` (one network: same method and architecture, one file per rate; the first
    rate is the default of `predict`) as an MLflow model of run `run_id`, in the run's experiment.

    `name` (default `<method>-network`) is the model's name in the experiment's Models tab; `input_example`
    (float32 (n, nodes, features), e.g. two test clips) defaults to one all-zero clip."""
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model
    from mlflow.pyfunc import save_model

    from mrmp.train.export import architecture, load_network

    if not files:
        raise ValueError("log_network_model: no network file given")
    nets = [load_network(f) for f in files]
    first = nets[0]
    arch = architecture(first.module)
    for net in nets[1:]:
        if net.info.method != first.info.method or architecture(net.module) != arch:
            raise ValueError(f"{net.path} is not the same network as {first.path} (method or architecture)")
    rates = [n.info.rate for n in nets]
    if len(set(rates)) != len(rates):
        raise ValueError(f"two files at one rate among {', '.join(map(str, files))}")
    example = (
        np.zeros((1, arch["num_nodes"], arch["in_features"]), np.float32)
        if input_example is None
        else np.asarray(input_example, dtype=np.float32)
    )
    info = first.info
    client = MlflowClient(uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    logged = client.create_logged_model(
        experiment_id,
        name=name or f"{info.method}-network",
        source_run_id=run_id,
        params={"method": info.method, "rates": ",".join(f"{r:g}" for r in rates), **arch},
        tags={"dataset": info.dataset, "split": info.split},
        model_type=MODEL_TYPE,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="mrmp-model-") as tmp:
            data = Path(tmp, NETWORKS_DIR)
            data.mkdir()
            for net in nets:
                shutil.copyfile(net.path, data / _rate_name(net.info.rate))
            save_model(
                path=os.path.join(tmp, "model"),
                loader_module=__name__,
                data_path=str(data),
                mlflow_model=Model(
                    artifact_path=logged.artifact_location, run_id=run_id, model_id=logged.model_id
                ),
                signature=_signature(arch, rates[0]),
                input_example=example,
                pip_requirements=_requirements(),
                model_config={"rate": rates[0]},
                metadata={
                    "method": info.method,
                    "rates": rates,
                    "dataset": info.dataset,
                    "class_names": info.class_names,
                    "format": "mrmp.pruned-network (see mrmp.train.export)",
                },
            )
            client.log_model_artifacts(logged.model_id, os.path.join(tmp, "model"))
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return LoggedNetworkModel(
        model_id=logged.model_id,
        model_uri=f"models:/{logged.model_id}",
        artifact_location=logged.artifact_location,
        run_id=run_id,
        experiment_id=experiment_id,
        method=info.method,
        rates=rates,
        infos={n.info.rate: n.info for n in nets},
        bytes={n.info.rate: n.bytes for n in nets},
    )


def version_tags(model: LoggedNetworkModel) -> dict[str, str]:
    """The tags of a registered version, few enough to read in the registry's table: method, rate and, at that
    rate (the first), validation and test accuracy, non-zero parameters and bytes on disk, what the data is
    (synthetic data says it is not the real dataset), and the rates it was trained for ("any": read at any
    rate). A model holding several rates adds one `at <rate>` tag per rate with its accuracies and size; the
    version's description has the rest."""
    rate = model.rates[0]
    info = model.infos[rate]
    trained = info.trained_rates
    tags = {
        "method": model.method,
        "rate": f"{rate:g}",
        "val_accuracy": _fmt(info.val_accuracy),
        "test_accuracy": _fmt(info.test_accuracy),
        "nonzero_params": str(info.nonzero),
        "size_bytes": str(model.bytes[rate]),
        "data": _data_note(info.dataset),
        "trained_rates": "any" if trained is None else ",".join(f"{r:g}" for r in trained),
    }
    if len(model.rates) > 1:
        for r in model.rates:
            i = model.infos[r]
            val = "-" if i.val_accuracy is None else f"{i.val_accuracy:.4f}"
            tags[f"at {r:g}"] = f"val {val}, test {i.test_accuracy:.4f}, {model.bytes[r]:,} B"
    return tags


def _version_description(model: LoggedNetworkModel) -> str:
    rate = model.rates[0]
    info = model.infos[rate]
    val = "-" if info.val_accuracy is None else f"{info.val_accuracy:.4f}"
    note = _data_note(info.dataset)
    data = info.dataset if note == info.dataset else f"{info.dataset}: {note}"
    others = [f"{r:g}" for r in model.rates[1:]]
    also = (
        f" Also holds the network at rate {', '.join(others)}: predict(..., params={{'rate': r}})."
        if others
        else ""
    )
    return (
        f"{model.method} pruned at rate {rate:g}: validation accuracy {val}, test {info.test_accuracy:.4f} "
        f"({data}, {info.split}); {info.kept:,} of {info.prunable:,} prunable "
        f"weights kept, {info.nonzero:,} of {info.params:,} parameters non-zero, {model.bytes[rate]:,} bytes on "
        f"disk.{also} Input: float32 (batch, nodes, features) chunk features; output: logits over "
        f"{len(info.class_names)} classes."
    )


DEFAULT_DESCRIPTION = (
    "Pruned attention GCNs for skeleton-based action recognition, trained and pruned by mrmp. Each version is "
    "one network (its tags: method, rate, validation and test accuracy, non-zero parameters, size on disk); the "
    "alias named after a method points at that method's newest version. With this store as the tracking URI, "
    "load one with mlflow.pyfunc.load_model('models:/NAME@METHOD') and call predict(x) on float32 (batch, "
    "nodes, features) chunk features for the logits; the network files inside load with "
    "torch.load(..., weights_only=True) through mrmp.train.export.load_network, and `mrmp predict FILE` runs one."
)


def register_network_model(
    uri: str,
    model: LoggedNetworkModel,
    name: str,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    alias: str | None = None,
) -> ModelVersion:
    """A new version of the registered model `name` (created when missing, with `description` or the default
    one, and `tags`) from `model`, tagged with `version_tags(model)`; `alias` (default: the method's name)
    points at it. Returns the version."""
    from mlflow import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    if not client.search_registered_models(filter_string=f"name = {_quote(name)}"):
        client.create_registered_model(name, tags=tags, description=description or DEFAULT_DESCRIPTION)
    elif description is not None:
        client.update_registered_model(name, description=description)
    # The source is the model's folder, not its models:/ URI: MLflow's sqlite registry resolves a models:/ source
    # through the process-wide tracking URI, which need not be `uri` (and ids are explicit here).
    version = client.create_model_version(
        name,
        source=model.artifact_location,
        run_id=model.run_id,
        tags=version_tags(model),
        description=_version_description(model),
        model_id=model.model_id,
    )
    client.set_registered_model_alias(name, alias or model.method, version.version)
    return client.get_model_version(name, version.version)


def log_and_register(
    uri: str,
    run_id: str,
    files: Sequence[str | Path],
    registered_name: str,
    input_example: np.ndarray | None = None,
    description: str | None = None,
) -> ModelVersion:
    """`log_network_model` then `register_network_model`: what a sweep's end does for each method's best."""
    model = log_network_model(uri, run_id, files, input_example=input_example)
    return register_network_model(uri, model, registered_name, description)


def latest_version(uri: str, name: str, method: str | None = None) -> ModelVersion | None:
    """The newest version of registered model `name` (of `method`'s networks only, when given), or None."""
    from mlflow import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    query = f"name = {_quote(name)}"
    if method is not None:
        query += f" AND tags.method = {_quote(method)}"
    found = client.search_model_versions(query, max_results=1, order_by=["version_number DESC"])
    return found[0] if found else None


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
