"""The search's budget checked on the deployed network: the one-line verdict, the real timing of an ONNX file on
the LUT's runtime, `amc evaluate --require-budget` (exit 3 on a miss), and older evaluation.json files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from amc.cli.main import main
from amc.config import load_config
from amc.costs.latency_tables import Grid, load_network, search_grid
from amc.deliver.deployed import (
    BudgetCheck,
    ModelledBudget,
    check_budget,
    measured_check,
    time_pair,
    verdict_from_dict,
)
from amc.deliver.evaluate import EVALUATION_FILE, Evaluation, read_evaluation
from amc.problem import Budget
from amc.pruning.export import export_onnx
from hwmodel import create_cost_model
from hwmodel.lut import LatencyTable, LutCostModel
from hwmodel.lut.timing import Measurement
from tests.evaluate.conftest import SMOKE

NS_PER_MAC = 1e-9
"""The test LUT's price of one MAC in ms: proportional to MACs, so a MACs-searched strategy meets its ratio
budget by the LUT, and a thousand times cheaper than any CPU, so the deployed network always misses it."""


def evaluate(source: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", str(source), "--out", str(out), "--no-progress", "--throughput-batch", "2",
                 "--finetune-epochs", "0", *extra])  # fmt: skip


def cheap_lut(path: Path) -> Path:
    """An ONNX Runtime LUT of this machine for every variant of the smoke search's tiny network, each entry
    artificially cheap (NS_PER_MAC per MAC): nothing is measured while pricing, and the prediction is optimistic."""
    config = load_config(SMOKE)
    network = load_network(config.model.name, dataset=config.data.dataset)
    table = LatencyTable.create("onnxruntime", threads=1, warmup=2, repeats=3)
    for spec in search_grid(network.table, Grid(int(config.search.round_to), config.search.lbound)):
        cost = NS_PER_MAC * spec.macs
        table.add(spec, Measurement(cost, 0.0, cost, 3))
    table.save(path)
    return path


def tiny_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)

    def net(channels: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(channels, 10)).eval()  # fmt: skip

    return net(32), net(8)


# ------------------------------------------------------------------------------------------------ the verdict


def test_the_verdict_is_one_line_for_a_miss_a_meet_and_a_meet_within_tolerance() -> None:
    miss = measured_check(0.231, 0.209, 0.217, "onnxruntime", threads=1, batch=1)
    assert not miss.meets
    assert miss.line() == (
        "budget check: measured 0.231 ms on onnxruntime (1 thread) vs budget 0.217 ms (LUT predicted 0.209 ms): "
        "MISSES by 6.5% (tolerance 2%)"
    )
    within = measured_check(0.220, 0.209, 0.217, "onnxruntime", threads=1, batch=1)
    assert within.meets and "meets it within tolerance (1.4% over, tolerance 2%)" in within.line()
    under = measured_check(0.200, 0.209, 0.217, "openvino", threads=2, batch=8, tolerance=0.0)
    assert under.meets and under.line().endswith("(batch 8, 2 threads) vs budget 0.217 ms (LUT predicted "
                                                 "0.209 ms): meets it (7.8% under)")  # fmt: skip
    assert not measured_check(0.2175, 0.2, 0.217, "torch", 1, 1, tolerance=0.0).meets
    for check in (miss, within, under):
        assert "\n" not in check.line()
        assert verdict_from_dict(json.loads(json.dumps(check.to_dict()))) == check


def test_a_budget_in_another_metric_is_the_cost_models_and_nothing_is_measured() -> None:
    macs = create_cost_model("macs")
    budget = Budget("macs", macs.unit, 1000.0, 2000.0, 100.0)
    dense, pruned = tiny_pair()
    verdict = check_budget(macs, budget, 900.0, dense, pruned, (3, 16, 16))
    assert isinstance(verdict, ModelledBudget) and verdict.meets
    assert "is met by the cost model" in verdict.line() and "nothing to measure" in verdict.line()
    over = check_budget(macs, budget, 1100.0, dense, pruned, (3, 16, 16))
    assert not over.meets and "is NOT met by the cost model" in over.line()
    assert verdict_from_dict(json.loads(json.dumps(over.to_dict()))) == over


def test_a_lut_of_another_device_is_not_timed_here() -> None:
    dense, pruned = tiny_pair()
    lut = LutCostModel(LatencyTable.create("onnxruntime", threads=1, warmup=2, repeats=3), foreign=True)
    budget = Budget("latency", "ms", 1e-6, 2e-6, 1e-7)  # timed here, this would miss by orders of magnitude
    verdict = check_budget(lut, budget, 5e-7, dense, pruned, (3, 16, 16))
    assert isinstance(verdict, ModelledBudget) and verdict.meets
    assert "measured on another device" in verdict.line() and "export-units" in verdict.line()
    assert verdict_from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict


def test_the_onnx_file_is_timed_on_the_luts_runtime_threads_and_batch(tmp_path: Path) -> None:
    dense, pruned = tiny_pair()
    onnx_file = export_onnx(pruned, tmp_path / "model.onnx", (3, 16, 16)).path
    lut = LutCostModel(LatencyTable.create("onnxruntime", threads=1, warmup=2, repeats=3))
    budget = Budget("latency", "ms", 1e-6, 2e-6, 1e-7)  # no CPU runs a network in a nanosecond
    check = check_budget(lut, budget, 5e-7, dense, pruned, (3, 16, 16), onnx_file=onnx_file, repeats=6)
    assert isinstance(check, BudgetCheck)
    assert (check.runtime, check.threads, check.batch, check.timed) == ("onnxruntime", 1, 1, str(onnx_file))
    assert check.measured_ms > 0 and check.dense_ms is not None and check.dense_ms > 0
    assert check.predicted_ms == 5e-7
    assert not check.meets and "MISSES" in check.line()


def test_openvino_times_the_same_onnx_file(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    dense, pruned = tiny_pair()
    onnx_file = export_onnx(pruned, tmp_path / "model.onnx", (3, 16, 16)).path
    dense_ms, pruned_ms, timed = time_pair("openvino", 1, dense, pruned, (1, 3, 16, 16), onnx_file, 2, 6)
    assert dense_ms > 0 and pruned_ms > 0 and timed == str(onnx_file)


def test_a_pytorch_lut_times_the_thinned_module() -> None:
    dense, pruned = tiny_pair()
    assert time_pair("torch", 1, dense, pruned, (1, 3, 16, 16), None, 2, 6)[2] == "module"


# ------------------------------------------------------------------------------------------------ amc evaluate


@pytest.fixture(scope="module")
def lut_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cheap_lut(tmp_path_factory.mktemp("lut") / "tiny-ort.json")


@pytest.mark.parametrize("require", [True, False])
def test_a_measured_miss_exits_3_with_require_budget_after_writing_everything(
    smoke_run: Path, lut_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], require: bool
) -> None:
    before = lut_file.read_bytes()
    out = tmp_path / "eval"
    flags = ["--require-budget"] if require else []
    assert evaluate(smoke_run, out, "--set", f"cost.model=lut:{lut_file}", *flags) == (3 if require else 0)
    result = read_evaluation(out)
    assert result is not None and isinstance(result.budget_check, BudgetCheck)
    check = result.budget_check
    assert not check.meets and check.runtime == "onnxruntime" and check.threads == 1 and check.batch == 1
    assert check.timed == str(out / "model.onnx") and check.predicted_ms == pytest.approx(result.cost)
    assert check.predicted_ms <= check.budget_ms < check.measured_ms
    assert check.line() in (out / "evaluation.md").read_text() and "MISSES" in check.line()
    assert (out / "model.onnx").is_file() and (out / "model.pt").is_file()
    assert {(row.backend, row.threads) for row in result.latency} >= {("onnxruntime", 1), ("torch", 1)}
    assert lut_file.read_bytes() == before  # priced from the table alone: nothing measured into it
    if require:
        assert "--require-budget" in capsys.readouterr().err


def test_a_measured_meet_exits_0_with_require_budget(smoke_run: Path, lut_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    # a budget of a second: any CPU runs the tiny network in far less
    args = ["--set", f"cost.model=lut:{lut_file}", "--set", "budget.value=1000", "--require-budget"]
    assert evaluate(smoke_run, out, *args) == 0
    result = read_evaluation(out)
    assert result is not None and isinstance(result.budget_check, BudgetCheck)
    assert result.budget_check.meets and result.budget_check.budget_ms == 1000
    assert "meets it" in (out / "evaluation.md").read_text()


def test_a_macs_budget_passes_require_budget_and_older_evaluation_files_still_load(
    smoke_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    assert evaluate(smoke_run, out, "--require-budget", "--no-onnx") == 0
    result = read_evaluation(out)
    assert result is not None and isinstance(result.budget_check, ModelledBudget)
    assert result.budget_check.meets and result.budget_check.metric == "macs"
    assert "nothing to measure" in (out / "evaluation.md").read_text()
    # an evaluation.json written before the check was recorded
    data = json.loads((out / EVALUATION_FILE).read_text())
    del data["budget_check"]
    older = Evaluation.from_dict(data)
    assert older.budget_check is None and "budget check" not in older.table()
    assert Evaluation.from_dict(result.to_dict()) == result


@pytest.mark.parametrize("tolerance", ["-1", "nan", "100"])
def test_a_bad_budget_tolerance_exits_2_before_anything_loads(
    tmp_path: Path, tolerance: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluate(tmp_path, tmp_path / "eval", "--budget-tolerance", tolerance) == 2
    assert "budget tolerance" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ amc prune


def test_prune_prints_the_latency_of_the_written_onnx_on_the_chosen_runtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["prune", "tiny", "--keep", "0.5", "--out", str(out), "--repeats", "3"]) == 0
    text = capsys.readouterr().out
    assert "latency ms (torch, batch 1, 1 thr)" in text and "latency ms (onnxruntime, batch 1, 1 thr)" in text
    other = tmp_path / "torch-only"
    assert main(["prune", "tiny", "--keep", "0.5", "--out", str(other), "--repeats", "3",
                 "--latency-backend", "torch"]) == 0  # fmt: skip
    assert "onnxruntime, batch 1" not in capsys.readouterr().out


def test_prune_times_the_onnx_file_on_openvino_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("openvino")
    args = ["prune", "tiny", "--keep", "0.5", "--out", str(tmp_path / "out"), "--repeats", "3"]
    assert main([*args, "--latency-backend", "openvino"]) == 0
    assert "latency ms (openvino, batch 1, 1 thr)" in capsys.readouterr().out


def test_exit_status_3_is_documented_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--require-budget" in text and "3 with --require-budget" in text and "--budget-tolerance PCT" in text
