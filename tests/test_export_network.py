"""Pruned networks on disk (`mrmp.train.export`), `mrmp export-network` and `mrmp predict`.

A network file must rebuild a module whose logits are the trainer's masked evaluation at the file's rate, with
pruned weights exact zeros; its size must follow the rate; a single-rate network is refused at other rates; and
bad files are clean errors. Everything trains on the toy problem (tiny GCN, a second or so a method).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mrmp.cli.main import COMMANDS, main
from mrmp.testing.contract import toy_config, toy_data
from mrmp.train import run
from mrmp.train.export import (
    decode_weight,
    encode_weight,
    export_run,
    load_network,
    load_trained,
    resolve_rate,
    score_network,
    write_network,
)
from mrmp.validation import ConfigError

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def data():
    return toy_data()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """name -> (RunResult, run folder) for the methods the tests read, trained once."""
    out = {}
    specs = {
        "mrmp": {},
        "srmp": {"rate": 0.9},
        "tcmp": {"rate": 0.8},
        "mp": {"rate": 0.7, "finetune_epochs": 5},
    }
    for name, params in specs.items():
        folder = tmp_path_factory.mktemp(name)
        out[name] = (run(toy_config(name, epochs=20, **params), data, out_dir=folder), folder)
    return out


def _masked_logits(trainer, rate: float, x: torch.Tensor) -> torch.Tensor:
    trainer.model.eval()
    with torch.no_grad():
        return trainer.model(x, trainer.method.eval_masks(rate))


@pytest.mark.parametrize(
    "name, rate", [("mrmp", 0.5), ("mrmp", 0.9), ("mrmp", 0.97), ("srmp", None), ("tcmp", None), ("mp", None)]
)
def test_loaded_network_is_the_masked_trainer(trained, data, tmp_path, name, rate):
    result, _ = trained[name]
    trainer = result.trainer
    written = write_network(trainer, tmp_path / "net.pt", rate)
    net = load_network(written.path)
    rate = written.info.rate
    x = torch.as_tensor(np.concatenate([data.x_val, data.x_test]))
    with torch.no_grad():
        got = net.module(x)  # a plain forward: no masks, no method
    want = _masked_logits(trainer, rate, x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    batched = trainer.model(x, [m.unsqueeze(0) for m in trainer.method.eval_masks(rate)])[
        0
    ]  # the curve's path
    torch.testing.assert_close(got, batched.detach(), rtol=1e-4, atol=1e-5)
    # pruned weights are exact zeros, kept ones the trained values
    names = dict(trainer.model.named_parameters())
    for layer, mask in zip(trainer.model.prunable, trainer.method.eval_masks(rate)):
        key = next(k for k, p in names.items() if p is layer.weight)
        stored = dict(net.module.named_parameters())[key].detach()
        assert torch.equal(stored, layer.weight.detach() * mask)
    # what the file says about itself matches the run's curve at that rate
    point = trainer.evaluate([rate])[0]
    assert written.info.test_accuracy == point.test_accuracy
    assert written.info.val_accuracy == point.val_accuracy
    assert written.info.kept == sum(int((m != 0).sum()) for m in trainer.method.eval_masks(rate))
    assert written.info.method == name and net.info == written.info
    score = score_network(net, data, "test")
    assert score.correct == round(point.test_accuracy * score.clips)


def test_file_loads_weights_only_and_shrinks_with_the_rate(trained, tmp_path):
    trainer = trained["mrmp"][0].trainer
    sizes = {r: write_network(trainer, tmp_path / f"{r}.pt", r).bytes for r in (0.0, 0.5, 0.9, 0.98)}
    assert sizes[0.0] > sizes[0.5] > sizes[0.9] > sizes[0.98]
    blob = torch.load(tmp_path / "0.9.pt", weights_only=True)
    n = sum(w.numel() for w in trainer.model.prunable_weights())
    stored = sum(
        t.numel() * t.element_size()
        for e in blob["prunable"].values()
        for k, t in e.items()
        if isinstance(t, torch.Tensor)
    )
    assert stored < 0.15 * 4 * n  # bitmask + 10 % of the values: ~13 % of the dense bytes
    assert sorted(blob["dense"]) == sorted(
        k
        for k, p in trainer.model.named_parameters()
        if all(p is not w for w in trainer.model.prunable_weights())
    )  # the non-prunable parameters, dense
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temp file
    with zipfile.ZipFile(tmp_path / "0.9.pt") as z:
        assert all(name.startswith("archive/") for name in z.namelist())  # no temp name inside


@pytest.mark.parametrize("rate, expected", [(0.0, "dense"), (0.5, "bitmask"), (0.99, "positions")])
def test_each_encoding_is_chosen_where_it_is_smallest_and_round_trips(rate, expected):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(40, 64, generator=gen)
    mask = (torch.rand(40, 64, generator=gen) >= rate).float()
    entry = encode_weight(w, mask)
    assert entry["encoding"] == expected
    assert torch.equal(decode_weight(entry), w * mask)
    if expected == "positions":
        assert entry["positions"].dtype == torch.int16  # 2,560 weights: two bytes a position


def test_single_rate_networks_are_refused_at_other_rates(trained, tmp_path):
    srmp = trained["srmp"][0].trainer
    with pytest.raises(ConfigError, match=r"rate: a srmp network is trained for rate 0.9 only, not 0.5"):
        write_network(srmp, tmp_path / "x.pt", 0.5)
    assert not (tmp_path / "x.pt").exists()
    assert write_network(srmp, tmp_path / "y.pt", 0.9 + 1e-9).info.rate == 0.9
    params = srmp.cfg.method.params
    assert resolve_rate("srmp", params, None) == 0.9
    with pytest.raises(ConfigError, match="read at any rate: choose one"):
        resolve_rate("mrmp", trained["mrmp"][0].trainer.cfg.method.params, None)
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\)"):
        resolve_rate("mrmp", trained["mrmp"][0].trainer.cfg.method.params, 1.0)


def test_export_run_from_a_run_folder_its_model_pt_or_its_bytes(trained, data, tmp_path):
    result, folder = trained["mrmp"]
    a = export_run(folder, tmp_path / "a.pt", 0.8, data=data)
    b = export_run(folder / "model.pt", tmp_path / "b.pt", 0.8, data=data)
    c = write_network(result.trainer, tmp_path / "c.pt", 0.8)
    raw = (folder / "model.pt").read_bytes()  # what a sweep's tracker.read_artifact(run_id, "model.pt") gives
    d = export_run(raw, tmp_path / "d.pt", 0.8, data=data)
    assert a.info == b.info == c.info == d.info
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "c.pt").read_bytes()
    trainer = load_trained(folder, data)
    assert [p.test_accuracy for p in trainer.evaluate()] == [p.test_accuracy for p in result.curve]


# --- the CLI ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A real (tiny) `mrmp train` run on the default synthetic SBU-like data, the CLI's own data path."""
    out = tmp_path_factory.mktemp("cli") / "run"
    sets = ["method.name=mrmp", "train.epochs=3", "train.threads=1", "model.blocks=1", "model.fc=16"]
    assert main(["train", "--quiet", *[a for s in sets for a in ("--set", s)], "--out", str(out)]) == 0
    return out


def test_export_network_then_predict(cli_run, tmp_path, capsys):
    net = tmp_path / "net.pt"
    capsys.readouterr()
    assert main(["export-network", str(cli_run), "--rate", "0.9", "--out", str(net)]) == 0
    out = capsys.readouterr().out
    assert f"{net}: mrmp at rate 0.9" in out and f"mrmp predict {net}" in out
    assert main(["predict", str(net)]) == 0
    out = capsys.readouterr().out
    kept = re.search(r"weights\s+([\d,]+) of ([\d,]+) prunable kept", out)
    assert kept and int(kept[1].replace(",", "")) < 0.12 * int(kept[2].replace(",", ""))
    assert f"size      {net.stat().st_size:,} bytes" in out
    assert "test split" in out and "as recorded when the file was written" in out
    assert "synthetic SBU-like" in out and "not SBU" in out  # never passed off as SBU
    assert re.search(r"accuracy\s+[01]\.\d{4} \(\d+/\d+\)", out)
    assert main(["predict", str(net), "--split", "val"]) == 0
    assert "val split" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (
            ["export-network", "{run}", "--out", "{tmp}/x.pt"],
            "model.pt: rate: a mrmp network is read at any rate",
        ),
        (["export-network", "{run}", "--rate", "1.5", "--out", "{tmp}/x.pt"], "rate: must be in [0, 1)"),
        (["export-network", "{tmp}", "--rate", "0.5", "--out", "{tmp}/x.pt"], "model.pt: no such file"),
        (["predict", "{run}/model.pt"], "it is a training checkpoint (model.pt); write a network file"),
        (["predict", "{run}/config.yaml"], "config.yaml: not a network file written by mrmp"),
        (["predict", "{tmp}/net.pt", "--data", "sbu"], "data.root: is required for data.name=sbu"),
        (["predict", "{tmp}/net.pt", "--data", "synthetic-fpha"], "the network {tmp}/net.pt takes 30 x"),
    ],
)
def test_bad_input_is_one_clean_line_and_exit_2(cli_run, tmp_path, capsys, argv, fragment):
    net = tmp_path / "net.pt"
    export_run(cli_run, net, 0.5)
    argv = [a.format(run=cli_run, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment.format(run=cli_run, tmp=tmp_path) in err and "Traceback" not in err
    assert not (tmp_path / "x.pt").exists()  # nothing half-written


def test_readme_cli_table_lists_every_command():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## CLI") :].split("\n## ")[0]
    listed = set(re.findall(r"^\| `mrmp ([\w-]+)", table, flags=re.M))
    assert listed == set(COMMANDS), (
        f"README's CLI table lists {sorted(listed)}, COMMANDS has {sorted(COMMANDS)}"
    )
