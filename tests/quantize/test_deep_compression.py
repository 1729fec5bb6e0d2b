"""Deep Compression's stored size: hand-computed Huffman and index sizes, k-means properties, pruning pays."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from amc.errors import UserError
from amc.models import create_model
from amc.quantize import LayerBits
from amc.quantize.deep_compression import (
    deep_compression_size,
    huffman_bits,
    huffman_lengths,
    kmeans_1d,
    layer_size,
)


@pytest.fixture
def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return create_model("tiny").eval()


def test_huffman_lengths_match_hand_built_trees() -> None:
    # {5, 2, 1, 1}: merge 1+1, then 2+2, then 4+5 -> depths 1, 2, 3, 3.
    assert huffman_lengths([5, 2, 1, 1]) == [1, 2, 3, 3]
    # Unused symbols get no code; a lone symbol still needs one bit per occurrence.
    assert huffman_lengths([0, 7, 0]) == [0, 1, 0]
    assert huffman_bits([0, 7, 0]) == 7
    # Four equal counts: a full tree of depth 2.
    assert huffman_lengths([3, 3, 3, 3]) == [2, 2, 2, 2]


def test_tiny_sparse_layer_matches_the_hand_count() -> None:
    """16 weights, 6 non-zero, 2-bit gaps (max skip 3), 2-bit codes; every figure below is counted by hand."""
    w = [3, 3, 0, 3, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0, 0, -1]
    layer = nn.Linear(16, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([w], dtype=torch.float32))
    size = deep_compression_size(nn.Sequential(layer), bits=2, gap_bits=2).layers[0]
    # Non-zeros at 0, 1, 3, 9, 10, 15: zeros skipped 0, 0, 1, 5, 0, 4. A 2-bit gap holds 0..3, so the runs of
    # 5 and 4 each need one padding zero (covering 3 zeros and itself): gaps 0, 0, 1, [3], 1, 0, [3], 0.
    assert (size.nonzero, size.padding) == (6, 2)
    entries = 8
    assert size.dense_bytes == 16 * 4
    assert size.pruned_bytes == math.ceil(entries * (32 + 2) / 8)  # 272 bits -> 34 bytes
    # One code reserved for the padding zero, so the 6 non-zeros share 3 centroids: -1, 1 and 3 exactly.
    assert size.centroids == 3
    codebook = 3 * 32
    assert size.quantized_bytes == math.ceil((entries * (2 + 2) + codebook) / 8)  # 128 bits -> 16 bytes
    # Code counts: value 3 x4, padding zero x2, 1 x1, -1 x1 -> lengths 1, 2, 3, 3 -> 4 + 4 + 3 + 3 = 14 bits.
    # Gap counts: 0 x4, 1 x2, 3 x2 -> lengths 1, 2, 2 -> 4 + 4 + 4 = 12 bits.
    # Tables: 4 symbols x 8 bits for codes, 4 x 8 for gaps. Total 14 + 12 + 32 + 32 + 96 = 186 bits -> 24 bytes.
    assert size.huffman_bytes == math.ceil((14 + 12 + 32 + 32 + codebook) / 8)
    assert size.ratio == pytest.approx(64 / 24)


def test_dense_layer_has_no_index_and_float32_layer_no_codebook() -> None:
    values = np.arange(1, 101, dtype=np.float64)
    dense = layer_size("fc", "linear", values, 32, 5)
    assert (dense.gap_bits, dense.centroids) == (0, 0)
    assert dense.pruned_bytes == dense.quantized_bytes == dense.huffman_bytes == dense.dense_bytes == 400
    quantized = layer_size("fc", "linear", values, 4, 5)
    assert quantized.pruned_bytes == 400  # nothing to prune: stored dense, no relative index
    assert quantized.quantized_bytes == math.ceil((100 * 4 + 16 * 32) / 8)


def test_kmeans_has_at_most_2_to_the_bits_values_and_error_falls_with_bits() -> None:
    values = np.random.default_rng(0).normal(size=2000)
    errors = []
    for bits in range(2, 9):
        clusters = kmeans_1d(values, 2**bits)
        shared = clusters.reconstruct()
        assert len(np.unique(shared)) <= 2**bits
        assert np.all(np.diff(clusters.centroids) > 0)
        errors.append(float(np.mean((shared - values) ** 2)))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]))
    # Each centroid is the mean of its cluster (a fixed point of Lloyd's iteration).
    clusters = kmeans_1d(values, 8)
    for index, centroid in enumerate(clusters.centroids):
        assert centroid == pytest.approx(values[clusters.labels == index].mean())


def test_kmeans_recovers_exact_clusters_and_handles_few_values() -> None:
    values = np.array([-2.0, -2.0, 0.5, 0.5, 0.5, 7.0])
    clusters = kmeans_1d(values, 3)
    np.testing.assert_array_equal(clusters.reconstruct(), values)
    assert kmeans_1d(np.array([1.5, 1.5]), 16).centroids.tolist() == [1.5]


def _conv(density: float) -> nn.Module:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3, bias=False)
    if density < 1:
        with torch.no_grad():
            flat = conv.weight.view(-1)
            order = flat.abs().argsort()
            flat[order[: int(round((1 - density) * flat.numel()))]] = 0
    return nn.Sequential(conv)


def test_half_masked_layer_stores_fewer_bytes_than_dense() -> None:
    dense = deep_compression_size(_conv(1.0), bits=8)
    half = deep_compression_size(_conv(0.5), bits=8)
    assert half.layers[0].density == pytest.approx(0.5)
    assert half.pruned_bytes < dense.pruned_bytes == dense.dense_bytes
    assert half.quantized_bytes < dense.quantized_bytes
    assert half.huffman_bytes < dense.huffman_bytes
    assert dense.quantized_bytes < dense.dense_bytes
    assert half.ratio > dense.ratio > 1


def test_huffman_pays_on_bell_shaped_weights() -> None:
    """Trained weights are bell-shaped, so linearly spaced centroids are used unevenly and Huffman codes beat the
    fixed width (uniform weights, as at initialisation, would not pay back the tables)."""
    values = np.random.default_rng(1).normal(size=64 * 64 * 9)
    size = layer_size("conv", "conv", values, 8, 8)
    assert size.huffman_bytes < size.quantized_bytes


def test_size_is_deterministic_and_does_not_touch_the_model(tiny_model: nn.Module) -> None:
    before = {key: value.clone() for key, value in tiny_model.state_dict().items()}
    first = deep_compression_size(tiny_model, bits=5)
    assert deep_compression_size(tiny_model, bits=5) == first
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(value, before[key])
    totals = first.to_dict()["total"]
    assert totals["huffman_bytes"] == sum(layer.huffman_bytes for layer in first.layers)


def test_layer_bits_leave_absent_layers_float32(tiny_model: nn.Module) -> None:
    names = [name for name, module in tiny_model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    bits = LayerBits({names[0]: 4})
    size = deep_compression_size(tiny_model, bits=bits)
    by_name = {layer.name: layer for layer in size.layers}
    assert by_name[names[0]].weight_bits == 4
    assert by_name[names[0]].quantized_bytes < by_name[names[0]].dense_bytes
    assert all(by_name[name].weight_bits == 32 for name in names[1:])
    assert by_name[names[-1]].quantized_bytes == by_name[names[-1]].dense_bytes


def test_masked_weights_are_read_through_torch_prune() -> None:
    model = _conv(1.0)
    prune.l1_unstructured(model[0], "weight", amount=0.75)
    size = deep_compression_size(model, bits=8).layers[0]
    assert size.density == pytest.approx(0.25, abs=1e-3)


@pytest.mark.parametrize("bits", [9, 1, 0, 3.5, True, float("nan"), "8"])
def test_bad_bits_are_user_errors(tiny_model: nn.Module, bits: object) -> None:
    with pytest.raises(UserError, match="bit-width"):
        deep_compression_size(tiny_model, bits=bits)  # type: ignore[arg-type]


@pytest.mark.parametrize("gap", [0, 17, -1, 2.0, float("nan")])
def test_bad_gap_bits_are_user_errors(tiny_model: nn.Module, gap: object) -> None:
    with pytest.raises(UserError, match="gap-bits"):
        deep_compression_size(tiny_model, gap_bits=gap)  # type: ignore[arg-type]


def test_foreign_layer_names_and_nan_weights_are_user_errors(tiny_model: nn.Module) -> None:
    with pytest.raises(UserError, match="not conv/linear layers"):
        deep_compression_size(tiny_model, bits=LayerBits({"nope": 4}))
    model = _conv(1.0)
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(UserError, match="NaN"):
        deep_compression_size(model)


# ------------------------------------------------------------------------------------------- amc size


@pytest.fixture
def model_dir(tmp_path, tiny_model: nn.Module):
    from amc.pruning.export import save_thinned

    with torch.no_grad():
        conv = next(module for module in tiny_model.modules() if isinstance(module, nn.Conv2d))
        conv.weight.view(-1)[::2] = 0  # half of the first conv masked
    save_thinned(tiny_model, tmp_path / "model", "tiny", 3, 10)
    return tmp_path / "model"


def test_size_cli_prints_the_table_and_json(model_dir, tiny_model: nn.Module, capsys) -> None:
    import json

    from amc.cli.main import main

    assert main(["size", str(model_dir), "--bits", "4"]) == 0
    out = capsys.readouterr().out
    assert "Deep Compression stored size" in out and "--bits 4" in out and "total" in out
    assert main(["size", str(model_dir), "--bits", "4", "--gap-bits", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = deep_compression_size(tiny_model, bits=4, gap_bits=3)
    assert data["total"]["huffman_bytes"] == expected.huffman_bytes
    assert data["layers"][0]["nonzero"] == data["layers"][0]["weights"] // 2


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--bits", "nan"], "bit-width 'nan'"),
        (["--bits", "9"], "bit-width 9"),
        (["--gap-bits", "0"], "relative-index width 0"),
        (["--bits-file", "missing.json"], "cannot read bit-widths"),
    ],
)
def test_size_cli_bad_input_is_exit_2(model_dir, capsys, extra: list[str], expected: str) -> None:
    from amc.cli.main import main

    assert main(["size", str(model_dir), *extra]) == 2
    assert expected in capsys.readouterr().err


def test_size_cli_refuses_missing_and_foreign_folders(tmp_path, capsys) -> None:
    from amc.cli.main import main

    assert main(["size", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["size", str(tmp_path)]) == 2
    assert "neither a model folder" in capsys.readouterr().err
    (tmp_path / "architecture.json").write_text("{not json")
    assert main(["size", str(tmp_path)]) == 2
    assert "cannot load the network" in capsys.readouterr().err


def test_size_cli_applies_a_run_folders_result_and_bits(tmp_path, capsys) -> None:
    """A run folder: its config's base model with best_strategy.json applied, sized at best_bits.json."""
    import json

    from amc.cli.main import main
    from amc.graph import build_layer_table
    from amc.pruning import Strategy

    run = tmp_path / "run"
    run.mkdir()
    smoke = (Path(__file__).parents[2] / "configs" / "smoke.yaml").read_text()
    (run / "config.yaml").write_text(smoke.replace("checkpoint: auto", "checkpoint: none"))  # no training
    table = build_layer_table(create_model("tiny"), (3, 16, 16), "tiny")
    Strategy.uniform(table, 0.5, round_to=4).save(run / "best_strategy.json")
    first = table.layers[0].name
    LayerBits({first: 3}, model="tiny").save(run / "best_bits.json")
    assert main(["size", str(run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bits"].endswith("best_bits.json")
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert layers[first]["weight_bits"] == 3 and layers[table.layers[-1].name]["weight_bits"] == 32
    assert data["total"]["weights"] < table.total_params  # channels removed
