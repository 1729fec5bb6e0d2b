"""`amc quantize` and `amc evaluate --int8` end to end on the tiny model and synthetic data, and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amc.cli.main import main
from amc.deliver.evaluate import Evaluation, Int8Row
from amc.quantize.ptq import QuantizeReport
from amc.training.checkpoints import base_checkpoint_path

SMOKE = "configs/smoke.yaml"
QUICK = ["--config", SMOKE, "--calibration-images", "64", "--repeats", "2", "--throughput-batch", "4", "--no-progress"]


def _checkpoint() -> Path:
    """The smoke config's trained tiny model (trained once into this session's private cache, ~2 s)."""
    path = base_checkpoint_path("tiny", "synthetic", 0)
    if not path.is_file():
        assert main(["train", "--config", SMOKE, "--no-progress"]) == 0
    return path


def _pruned(folder: Path) -> Path:
    args = ["prune", "tiny", "--checkpoint", str(_checkpoint()), "--keep", "0.5", "--round-to", "4", "--out",
            str(folder), "--input-size", "3,16,16", "--no-onnx", "--repeats", "2"]  # fmt: skip
    assert main(args) == 0
    return folder


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    """What the command printed to stderr, its line wrapping undone."""
    return " ".join(capsys.readouterr().err.split())


def _report(folder: Path) -> QuantizeReport:
    return QuantizeReport.from_dict(json.loads((folder / "quantize.json").read_text()))


def test_quantize_a_pruned_model_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, out = _pruned(tmp_path / "pruned"), tmp_path / "int8"
    assert main(["quantize", str(source), "--out", str(out), "--fp32-layers", "fc", *QUICK]) == 0
    assert {p.name for p in out.iterdir()} == {"model.onnx", "model.int8.onnx", "quantize.json", "quantize.md"}
    report = _report(out)
    c = report.comparison
    assert (report.model, report.dataset, report.settings.fp32_layers, c.fp32_nodes) == (
        "tiny", "synthetic", ("fc",), ("/fc/Gemm",)
    )  # fmt: skip
    assert abs(c.int8.test_top1 - c.fp32.test_top1) <= 0.05  # (pruned without BN re-estimation: near chance)
    assert c.int8.size_bytes < c.fp32.size_bytes and c.timing.batch == 4
    assert "kept in float32: fc" in (out / "quantize.md").read_text()
    assert "| test top-1" in capsys.readouterr().out


def test_quantize_a_base_checkpoint_into_the_default_folder(tmp_path: Path) -> None:
    checkpoint = tmp_path / "base.pt"
    checkpoint.write_bytes(_checkpoint().read_bytes())
    assert main(["quantize", str(checkpoint), *QUICK]) == 0
    report = _report(tmp_path / "quantize")
    assert report.source == str(checkpoint) and report.settings.calibration_images == 64
    c = report.comparison
    assert c.fp32.test_top1 > 0.6 and abs(c.int8.test_top1 - c.fp32.test_top1) <= 0.03


def test_an_int8_result_is_refused_by_quantize_and_evaluate(tmp_path: Path, capsys) -> None:
    out = tmp_path / "int8"
    assert main(["quantize", str(_pruned(tmp_path / "pruned")), "--out", str(out), *QUICK]) == 0
    capsys.readouterr()
    for argv in (["quantize", str(out), *QUICK], ["evaluate", str(out)], ["evaluate", str(out / "model.int8.onnx")]):
        assert main(argv) == 2
        assert "float PyTorch network" in _err(capsys)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--calibration-images", "0"], "calibration-images"),
        (["--calibration-images", "nan"], "calibration-images"),
        (["--calibration-images", "-5"], "calibration-images"),
        (["--calibration-images", "2.5"], "calibration-images"),
        (["--method", "kmeans"], "'kmeans'"),
        (["--auto-fp32", "nan"], "auto-fp32"),
        (["--auto-fp32", "-1"], "auto-fp32"),
    ],
)
def test_bad_values_exit_2_before_anything_is_written(flags, message, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["quantize", str(_checkpoint()), "--config", SMOKE, "--out", str(out), *flags]) == 2
    assert message in _err(capsys) and not out.exists()


def test_an_unwritable_out_is_refused_before_calibrating(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["quantize", str(_checkpoint()), "--config", SMOKE, "--out", str(blocker / "sub")]) == 2
    assert "cannot be created" in _err(capsys)


def test_an_unknown_fp32_layer_is_named_with_valid_ones(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["quantize", str(_checkpoint()), "--out", str(out), "--fp32-layers", "stem.0,nope", *QUICK]) == 2
    err = _err(capsys)
    assert "'nope'" in err and "stem.0" in err and not (out / "model.int8.onnx").exists()


def test_a_folder_amc_did_not_write_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["quantize", str(tmp_path), "--config", SMOKE]) == 2
    assert "neither a model folder" in _err(capsys)


def test_an_int8_row_reads_as_fp32_beside_int8() -> None:
    row = Int8Row("pruned", 0.9, 0.99, 0.89, 0.98, 4096, 1024, 0.2, 0.1, 4.0, 2.0, 64, 1)
    text = "\n".join(" | ".join(line) for line in row.lines())
    assert "4.00x smaller" in text and "2.00x faster" in text and "-1.00 pt" in text and "batch 64" in text
    assert Evaluation.__dataclass_fields__["int8"].default == ()  # files written before --int8 still load


@pytest.mark.slow
def test_a_run_folder_quantizes_and_evaluate_reports_int8_rows(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["search", "--config", SMOKE, "--out", str(run), "--no-progress"]) == 0
    assert main(["quantize", str(run), "--sensitivity", "--auto-fp32", "1", *QUICK[2:]]) == 0
    report = _report(run / "quantize")
    assert report.sensitivity is not None and report.auto_fp32 is not None
    assert len(report.sensitivity["layers"]) == 5
    assert main(["evaluate", str(run), "--int8", "--finetune-epochs", "0", "--calibration-images", "64",
                 "--throughput-batch", "4", "--no-progress"]) == 0  # fmt: skip
    evaluation = Evaluation.from_dict(json.loads((run / "evaluate" / "evaluation.json").read_text()))
    assert [row.network for row in evaluation.int8] == ["dense", "pruned"]
    assert abs(evaluation.int8[1].fp32_top1 - evaluation.test_top1) < 1e-9  # the same network, scored twice
    assert "pruned INT8 test top-1" in (run / "evaluate" / "evaluation.md").read_text()
