"""Results that are not float PyTorch networks are refused where one is needed, with what to do instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from amc.cli.main import main
from amc.deliver.sources import schedule_source
from amc.errors import UserError
from amc.quantize import LayerBits


def test_a_mixed_precision_run_is_not_evaluated_as_if_it_were_float(tmp_path: Path) -> None:
    LayerBits({"conv1": 4}, {"conv1": 8}, "tiny").save(tmp_path / "best_bits.json")
    (tmp_path / "best_strategy.json").write_text("{}")  # a joint run has both
    with pytest.raises(UserError) as error:
        schedule_source(tmp_path)
    assert "mixed-precision result" in error.value.problem
    assert "amc size" in error.value.fix and "best_strategy.json" in error.value.fix


def test_amc_prune_refuses_an_onnx_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx_file = tmp_path / "model.int8.onnx"
    onnx_file.write_bytes(b"\x08\x07")
    code = main(["prune", "tiny", "--checkpoint", str(onnx_file), "--keep", "0.5", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "exported (INT8 or ONNX) network; amc prune starts from a float PyTorch network" in capsys.readouterr().err
