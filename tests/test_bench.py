"""`mrmp bench --quick`: every figure is present, finite and positive. Nothing here asserts a time."""

from __future__ import annotations

import json
import math

import pytest

from mrmp.bench import FIGURE_KEYS, GOALS
from mrmp.cli.main import main


@pytest.mark.slow
def test_quick_bench_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["quick"] is True and result["command"].startswith("mrmp bench --quick")
    for key in FIGURE_KEYS:
        value = result["figures"][key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, key
    assert set(result["goals"]) == set(GOALS) and set(result["met"]) == set(GOALS)
    assert result["details"]["protocol_small_cpu"]["extrapolated"] is True
    assert "step_ratio.tcmp" in capsys.readouterr().out


def test_bench_rejects_bad_items(capsys):
    assert main(["bench", "--items", "7"]) == 2
    assert "--items" in capsys.readouterr().err
