"""`amc prune`: thinned model, ONNX, strategy and schedule written; figures printed; bad input exits 2."""

from __future__ import annotations

import pytest
import torch

from amc.cli.main import main
from amc.models import create_model
from amc.pruning.export import load_thinned
from amc.schedule import load_schedule
from amc.training.checkpoints import save_checkpoint


def test_prune_uniform_keep_writes_everything(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["prune", "tiny", "--keep", "0.5", "--out", str(out), "--repeats", "3"]) == 0
    text = capsys.readouterr().out
    assert "MACs" in text and "latency ms" in text and "ONNX Runtime" in text
    for name in ("model.pt", "architecture.json", "model.onnx", "schedule.json", "schedule.yaml"):
        assert (out / name).is_file(), name
    model = load_thinned(out)
    assert model.stem[0].out_channels == 8
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 10)


def test_load_pruned_reads_what_prune_writes(tmp_path) -> None:
    """`amc prune`, `amc evaluate` and `amc.export` write one folder layout; `amc.load_pruned` reads it back."""
    import amc

    torch.manual_seed(0)
    base = create_model("tiny").eval()
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, base, {"model": "tiny", "input_size": [3, 16, 16], "num_classes": 10})
    out = tmp_path / "out"
    argv = ["prune", "tiny", "--keep", "0.5", "--checkpoint", str(checkpoint), "--out", str(out), "--no-onnx"]
    assert main([*argv, "--repeats", "3"]) == 0
    rebuilt = amc.load_pruned(base, out)
    example = torch.randn(2, 3, 16, 16)
    assert torch.allclose(rebuilt(example), load_thinned(out)(example))
    assert rebuilt.stem[0].out_channels == 8


def test_prune_from_checkpoint_and_schedule_with_lstsq_and_adaptive_bn(tmp_path, capsys) -> None:
    model = create_model("tiny")
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, model, {"model": "tiny", "input_size": [3, 16, 16], "num_classes": 10})
    first = tmp_path / "first"
    assert main(["prune", "tiny", "--keep", "0.5", "--out", str(first), "--no-onnx", "--repeats", "3"]) == 0
    second = tmp_path / "second"
    argv = [
        "prune",
        "tiny",
        "--strategy",
        str(first / "schedule.yaml"),
        "--checkpoint",
        str(checkpoint),
        "--selection",
        "lstsq",
        "--dataset",
        "synthetic",
        "--search-val-size",
        "256",
        "--adaptive-bn",
        "64",
        "--out",
        str(second),
        "--no-onnx",
        "--repeats",
        "3",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "least-squares refit" in text and "s per layer" in text and "re-estimated on 64" in text
    table = _table()
    assert load_schedule(second / "schedule.json", table).kept_channels(table) == load_schedule(
        first / "schedule.json", table
    ).kept_channels(table)
    assert load_schedule(second / "schedule.yaml", _table()).strategy is not None


def _table():
    from amc.graph import build_layer_table

    return build_layer_table(create_model("tiny"), (3, 16, 16), "tiny")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keep", "1.5"], "--keep 1.5 is not a keep ratio"),
        (["--keep", "0.5", "--selection", "lstsq"], "need calibration images"),
        (["--strategy", "missing.json"], "does not exist"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, argv, message) -> None:
    assert main(["prune", "tiny", *argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err.replace("\n  ", " ")
