"""A thinned network architecture.json cannot describe is saved as a torch.export program and reloads exactly;
one neither format can hold is a UserError before any pruning; zoo CNNs keep architecture.json."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch
from torch import Tensor, nn

import amc
from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model, registry
from amc.pruning import Strategy, thin
from amc.pruning.export import check_saveable, is_thinned_folder, load_thinned, save_thinned
from amc.pruning.exported import MANIFEST_FILE, PROGRAM_FILE, read_manifest

SIZE = (3, 16, 16)


class LayerNorm2d(nn.LayerNorm):
    """ConvNeXt's channels-first LayerNorm: a module architecture.json does not know."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SignGate(nn.Module):
    """A Python branch on a tensor's value: torch.export cannot capture it."""

    def forward(self, x: Tensor) -> Tensor:
        return x if x.mean() > 0 else -x


def _net(in_channels: int = 3, num_classes: int = 10, gate: bool = False) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, 16, 3, padding=1), LayerNorm2d(16), nn.ReLU()]
    layers += [SignGate()] if gate else []
    layers += [nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers, nn.Linear(32, num_classes))


@pytest.fixture
def zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tiny_ln` (LayerNorm2d) and `tiny_gate` (LayerNorm2d + a data-dependent branch) as zoo models."""
    for name, gate in (("tiny_ln", False), ("tiny_gate", True)):
        build = lambda c, n, gate=gate: _net(c, n, gate)  # noqa: E731
        monkeypatch.setitem(registry._ZOO, name, registry.ModelInfo(name, "test", SIZE, build))


def _thinned(name: str) -> tuple[nn.Module, nn.Module, Strategy]:
    torch.manual_seed(0)
    model = create_model(name).eval()
    table = build_layer_table(model, SIZE, name)
    strategy = Strategy.uniform(table, 0.5)
    return model, thin(model, table, strategy.kept_channels(table)).eval(), strategy


def test_layernorm_model_round_trips_as_torch_export(tmp_path, zoo) -> None:
    model, thinned, _ = _thinned("tiny_ln")
    assert check_saveable(model, "tiny_ln", SIZE) == "torch.export"
    files = save_thinned(thinned, tmp_path, "tiny_ln", 3, 10, input_size=SIZE)
    assert files.format == "torch.export" and files.architecture is None
    assert not (tmp_path / "architecture.json").exists() and (tmp_path / PROGRAM_FILE).is_file()
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["_version"] == 1 and manifest["format"] == "torch.export"
    assert "LayerNorm2d at 1 is not rebuildable from architecture.json" in manifest["reason"]
    assert is_thinned_folder(tmp_path)
    reloaded = load_thinned(tmp_path)
    for batch in (1, 4):
        x = torch.randn(batch, *SIZE)
        with torch.no_grad():
            torch.testing.assert_close(reloaded(x), thinned(x), atol=1e-5, rtol=0)
    assert reloaded.train() is reloaded  # readers may call train()/eval() on any loaded network


def test_export_folder_reloads_both_ways_and_onnx(tmp_path, zoo) -> None:
    base, thinned, strategy = _thinned("tiny_ln")
    files = amc.export(thinned, tmp_path, strategy, SIZE, "tiny_ln")
    assert files.program is not None and files.architecture is None and files.onnx is not None
    x = torch.randn(4, *SIZE)
    with torch.no_grad():
        expected = thinned(x)
        torch.testing.assert_close(load_thinned(tmp_path)(x), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(amc.load_pruned(base, tmp_path)(x), expected, atol=1e-5, rtol=0)


def test_neither_format_is_an_early_error_naming_the_module(zoo) -> None:
    model = create_model("tiny_gate").eval()
    with pytest.raises(UserError, match=r"torch.export fails in 3 \(SignGate\)"):
        check_saveable(model, "tiny_gate", SIZE)


def test_zoo_cnn_keeps_architecture_json(tmp_path) -> None:
    model, thinned, _ = _thinned("tiny")
    assert check_saveable(model, "tiny", SIZE) == "architecture.json"
    files = save_thinned(thinned, tmp_path, "tiny", 3, 10)
    assert files.format == "architecture.json" and files.program is None
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.format == "architecture.json"
    assert not (tmp_path / PROGRAM_FILE).exists()


def test_program_with_pickled_payload_is_refused(tmp_path, zoo) -> None:
    _, thinned, _ = _thinned("tiny_ln")
    save_thinned(thinned, tmp_path, "tiny_ln", 3, 10, input_size=SIZE)
    path = tmp_path / PROGRAM_FILE
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config = next(name for name in entries if name.endswith("weights_config.json"))
    data = json.loads(entries[config])
    next(iter(data["config"].values()))["use_pickle"] = True
    entries[config] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
    with pytest.raises(UserError, match="holds pickled objects"):
        load_thinned(tmp_path)


def test_future_manifest_version_is_refused(tmp_path) -> None:
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"_type": "amc.ThinnedModel", "_version": 9}))
    with pytest.raises(UserError, match="version 9"):
        load_thinned(tmp_path)


def test_prune_cli_writes_torch_export_and_readers_load_modules(tmp_path, zoo, capsys) -> None:
    """`amc prune` on a network architecture.json cannot describe: no late error; `amc size` reads the folder."""
    from amc.cli.main import main
    from amc.deliver.export import load_thinned_module

    out = tmp_path / "out"
    argv = ["prune", "tiny_ln", "--keep", "0.5", "--out", str(out), "--repeats", "2", "--latency-backend", "torch"]
    assert main(argv) == 0
    assert str(out / PROGRAM_FILE) in capsys.readouterr().out
    assert read_manifest(out).format == "torch.export"  # type: ignore[union-attr]
    modules = load_thinned_module(out)
    assert [m.out_channels for m in modules.modules() if isinstance(m, nn.Conv2d)] == [8, 16]
    x = torch.randn(4, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(modules(x), load_thinned(out)(x), atol=1e-5, rtol=0)
    assert main(["size", str(out)]) == 0
