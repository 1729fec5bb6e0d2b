"""`amc schedule inspect|convert`."""

from __future__ import annotations

import json
from pathlib import Path

from amc.cli.main import main

DATA = Path(__file__).parents[1] / "data"


def test_inspect_json_keys_and_figures(capsys) -> None:
    argv = ["schedule", "inspect", str(DATA / "distiller_resnet20_hybrid.yaml"), "--model", "resnet20", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"dense_macs", "ideal_macs", "dense_params", "ideal_params", "layers"} <= set(data)
    assert data["ideal_macs"] < data["dense_macs"] < 40_813_184  # stage 2 thinned, stage 3 sparse
    fc = next(layer for layer in data["layers"] if layer["name"] == "fc")
    assert fc["weight_sparsity"] == 0.5 and fc["out_channels"] == 10


def test_inspect_table_and_convert_round_trip(tmp_path, capsys) -> None:
    source = DATA / "distiller_resnet20_hybrid.yaml"
    assert main(["schedule", "inspect", str(source), "--model", "resnet20"]) == 0
    table = capsys.readouterr().out
    assert "layer2.0.conv1" in table and "ideal" in table
    converted = tmp_path / "s.json"
    back = tmp_path / "s.yaml"
    assert main(["schedule", "convert", str(source), str(converted), "--model", "resnet20"]) == 0
    assert main(["schedule", "convert", str(converted), str(back), "--model", "resnet20", "--no-module-prefix"]) == 0
    capsys.readouterr()
    outputs = []
    for path in (source, converted, back):
        assert main(["schedule", "inspect", str(path), "--model", "resnet20", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        outputs.append({key: value for key, value in data.items() if key not in ("notes", "timeline")})
    # the same network at the end; the source's gradual timeline becomes amc's one-shot form
    assert outputs[0] == outputs[1] == outputs[2]
    assert "module." not in back.read_text().split("pruners:")[1]


def test_bad_schedule_exits_2_naming_the_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\npruners:\n  p:\n    class: AutomatedGradualPruner\n    final_sparsity: 0.5\n"
        "    weights: [module.layer1.0.conv9.weight]\n"
    )
    assert main(["schedule", "inspect", str(bad), "--model", "resnet20"]) == 2
    err = capsys.readouterr().err.replace("\n  ", " ")
    assert "line 6" in err and "module.layer1.0.conv9.weight" in err


def test_inspect_prints_the_timeline_distillers_counts_and_the_notes(capsys) -> None:
    argv = ["schedule", "inspect", str(DATA / "distiller_plain20_dropfilter.yaml"), "--model", "plain20"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "15-219" in captured.out and "mask-only" in captured.out  # 205 identical epochs, one row
    assert "Distiller's count (conv + linear weights, no BN, no biases): original 268,336" in captured.out
    err = captured.err.replace("\n", " ")
    assert "amc: warning:" in err and "discard_masks_at_minibatch_end" in err and "training_lr (StepLR)" in err


def test_a_schedule_without_pruners_is_the_dense_network(capsys) -> None:
    argv = ["schedule", "inspect", str(DATA / "distiller_preact_resnet20_pact.yaml"), "--model", "preact_resnet20"]
    assert main([*argv, "--json", "--check"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dense_macs"] == data["original_macs"] and data["distiller_nnz"] == data["original_distiller_params"]
    assert any("PACTQuantizer" in note for note in data["notes"])
