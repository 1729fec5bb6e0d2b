"""Saved thinned networks reload without the pruning path; ONNX export matches PyTorch."""

from __future__ import annotations

import json

import pytest
import torch

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.pruning import Strategy, thin
from amc.pruning.export import export_onnx, load_thinned, save_thinned


@pytest.mark.parametrize("name", ["tiny", "mobilenetv2"])
def test_save_and_reload_thinned(tmp_path, name: str, randomize_bn) -> None:
    model = randomize_bn(create_model(name, in_channels=1, num_classes=7))
    table = build_layer_table(model, (1, 16, 16), name)
    thinned = thin(model, table, Strategy.uniform(table, 0.5).kept_channels(table)).eval()
    files = save_thinned(thinned, tmp_path, name, in_channels=1, num_classes=7)
    assert json.loads(files.architecture.read_text())["_version"] == 1
    reloaded = load_thinned(tmp_path)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), thinned(x))


def test_reload_rejects_other_files(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_thinned(tmp_path)
    (tmp_path / "architecture.json").write_text(json.dumps({"_type": "amc.ThinnedArchitecture", "_version": 5}))
    with pytest.raises(UserError, match="version 5"):
        load_thinned(tmp_path)


def test_onnx_export_matches_pytorch(tmp_path, randomize_bn) -> None:
    model = randomize_bn(create_model("tiny"))
    table = build_layer_table(model, (3, 16, 16), "tiny")
    thinned = thin(model, table, Strategy.uniform(table, 0.5).kept_channels(table))
    check = export_onnx(thinned, tmp_path / "m.onnx", (3, 16, 16))
    assert check.path.is_file() and check.max_abs_diff < 1e-4
