"""`amc compare`: methods side by side from run folders, with and without fine-tuned results."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from amc.cli.main import main
from tests.evaluate.conftest import smoke_search


def test_compare_writes_tables_and_plots(smoke_run: Path, tmp_path: Path) -> None:
    other = smoke_search(tmp_path / "seed1", "--seed", "1")
    assert main(["evaluate", str(other), "--finetune-epochs", "1", "--no-onnx", "--no-progress"]) == 0
    out = tmp_path / "comparison"
    assert main(["compare", str(smoke_run), str(other), "--out", str(out)]) == 0
    with (out / "comparison.csv").open() as handle:
        records = list(csv.DictReader(handle))
    assert [row["run"] for row in records] == ["run", "seed1"]
    assert [row["seed"] for row in records] == ["0", "1"]
    assert records[0]["test_top1"] == "" and 0.0 <= float(records[1]["test_top1"]) <= 1.0
    for row in records:
        assert float(row["cost"]) <= float(row["budget"]) and float(row["speedup"]) > 0
        assert int(row["macs"]) < int(row["dense_macs"])
    table = (out / "comparison.md").read_text()
    assert "| dense" in table and "| amc" in table and "2 |" in table  # one method row over two runs
    assert (out / "plots" / "pareto.png").stat().st_size > 0
    assert (out / "plots" / "keep_ratios.png").stat().st_size > 0


def test_an_unfinished_run_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "half").mkdir()
    assert main(["compare", str(tmp_path / "half"), "--out", str(tmp_path / "out")]) == 2
    assert "has no summary.json" in capsys.readouterr().err
