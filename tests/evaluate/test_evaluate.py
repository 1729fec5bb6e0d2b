"""`amc evaluate`: fine-tuned, tested, measured and exported; resumable fine-tuning; element-wise schedules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import amc.training.loop
from amc.cli.main import main
from amc.deliver.evaluate import EVALUATION_FILE, read_evaluation
from amc.optional import installed
from amc.pruning import load_thinned
from tests.evaluate.conftest import smoke_search


def evaluate(source: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", str(source), "--out", str(out), "--no-progress", "--throughput-batch", "8", *extra])


def test_evaluate_writes_a_fine_tuned_measured_and_exported_network(smoke_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    assert evaluate(smoke_run, out, "--finetune-epochs", "1") == 0
    result = read_evaluation(out)
    assert result is not None
    assert 0.0 <= result.test_top1 <= result.test_top5 <= 1.0
    assert result.macs < result.dense_macs and result.params < result.dense_params
    assert result.cost < result.dense_cost
    runtimes = ("onnxruntime", "torch", *(("openvino",) if installed("openvino") else ()))
    assert {(row.backend, row.batch) for row in result.latency} == {(name, b) for name in runtimes for b in (1, 8)}
    assert all(row.dense_ms > 0 and row.pruned_ms > 0 for row in result.latency)
    assert len(result.epochs) == 1
    for name in ("model.pt", "architecture.json", "model.onnx", "schedule.json", "schedule.yaml", "evaluation.md"):
        assert (out / name).is_file(), name
    # the exported network rebuilds without the original model and has the evaluated shape
    model = load_thinned(out)
    assert sum(p.numel() for p in model.parameters()) == result.params


def test_interrupted_fine_tuning_resumes_to_the_same_network(smoke_run: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    straight = tmp_path / "straight"
    assert evaluate(smoke_run, straight, "--finetune-epochs", "2", "--no-onnx") == 0

    run_epoch = amc.training.loop._run_epoch
    calls = {"n": 0}

    def killed_in_second_epoch(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return run_epoch(*args, **kwargs)

    resumed = tmp_path / "resumed"
    monkeypatch.setattr(amc.training.loop, "_run_epoch", killed_in_second_epoch)
    assert evaluate(smoke_run, resumed, "--finetune-epochs", "2", "--no-onnx") == 130  # as after Ctrl-C
    assert not (resumed / EVALUATION_FILE).exists()
    monkeypatch.setattr(amc.training.loop, "_run_epoch", run_epoch)
    assert evaluate(smoke_run, resumed, "--finetune-epochs", "2", "--no-onnx") == 0

    first, second = read_evaluation(straight), read_evaluation(resumed)
    assert first is not None and second is not None
    assert second.test_top1 == first.test_top1 and len(second.epochs) == 2
    a = torch.load(straight / "model.pt", weights_only=True)
    b = torch.load(resumed / "model.pt", weights_only=True)
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_checkpoint_of_other_settings_is_not_resumed(smoke_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    assert evaluate(smoke_run, out, "--finetune-epochs", "1", "--no-onnx") == 0
    assert evaluate(smoke_run, out, "--finetune-epochs", "2", "--no-onnx") == 2


def test_element_wise_run_reports_ideal_macs_and_nonzero_params(tmp_path: Path) -> None:
    run = smoke_search(tmp_path / "sparse", "--set", "search.granularity=element",
                       "--cost-model", "sparse:systolic:scalesim-32x32")  # fmt: skip
    summary = json.loads((run / "summary.json").read_text())
    assert summary["compute_reduction"] > 1.0 and summary["param_reduction"] > 1.0
    assert summary["best_cost"] <= summary["budget"]["value"] * (1 + 1e-9)
    assert (run / "best_densities.json").is_file() and (run / "sparsity.md").is_file()
    out = tmp_path / "eval"
    assert evaluate(run, out, "--finetune-epochs", "1", "--no-onnx") == 0
    result = read_evaluation(out)
    assert result is not None
    assert result.macs == result.dense_macs  # no channel is removed
    assert result.ideal_macs < result.macs and result.nonzero_params < result.params
    # the masks held while fine-tuning: the exported weights keep the searched sparsity
    weights = torch.load(out / "model.pt", weights_only=True)
    densities = json.loads((run / "best_densities.json").read_text())["densities"]
    for layer, density in densities.items():
        weight = weights[f"{layer}.weight"]
        assert (weight != 0).float().mean().item() == pytest.approx(density, abs=0.01)


def test_missing_source_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate(tmp_path / "nowhere", tmp_path / "out") == 2
    assert "does not exist" in capsys.readouterr().err
