"""`amc lut ...` end to end on the 4-layer test model, with few repeats so each command takes a second or two."""

from __future__ import annotations

import json

import torch

from amc.cli.main import main
from amc.costs.latency_tables import Grid, load_network, random_kept, search_grid
from hwmodel.lut.table import LatencyTable

torch.set_num_threads(1)

FAST = ["--repeats", "3", "--warmup", "1", "--no-progress"]


def unwrapped(text: str) -> str:
    """The CLI's error paragraph as one line (textwrap may break lines after a hyphen)."""
    return text.replace("-\n  ", "-").replace("\n  ", " ")


def test_search_grid_of_the_tiny_model():
    # Groups: 0 = stem.0 + conv2 (16 ch), 1 = conv1 (16), 2 = down.0 (32). With round_to 8 and lbound 0.2:
    # 16 -> {8, 16}, 32 -> {8, 16, 24, 32}. stem.0: 2 outs; conv1: 2 ins x 2 outs; conv2: 2 x 2; down.0: 2 x 4;
    # fc: 4 ins. 2 + 4 + 4 + 8 + 4 = 22 distinct variants.
    network = load_network("tiny")
    assert len(search_grid(network.table, Grid(8, 0.2))) == 22
    assert len(search_grid(network.table, Grid(16, 0.2))) == 1 + 1 + 1 + 2 + 2


def test_random_variants_stay_on_the_grid():
    network = load_network("tiny")
    rng = __import__("numpy").random.default_rng(0)
    for _ in range(20):
        kept = random_kept(network.table, Grid(8, 0.2), rng)
        assert kept[0] in (8, 16) and kept[1] in (8, 16) and kept[2] in (8, 16, 24, 32)


def test_build_resume_calibrate_validate(tmp_path, capsys):
    out = tmp_path / "tiny.json"
    assert main(["lut", "build", "--model", "tiny", "--out", str(out), "--calibrate", "2", *FAST]) == 0
    table = LatencyTable.load(out)
    assert len(table.entries) == 22 and len(table.overheads) == 1
    assert "measuring 22 on this machine" in capsys.readouterr().out

    assert main(["lut", "build", "--model", "tiny", "--out", str(out), "--calibrate", "0", *FAST]) == 0
    assert "measuring 0 on this machine" in capsys.readouterr().out

    assert (
        main(["lut", "validate", "--lut", str(out), "--model", "tiny", "--samples", "3", "--json", "--no-progress"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert {"mape", "within_10pct", "spearman", "kendall", "macs_spearman", "n"} <= set(report) and report["n"] == 3


def test_resuming_with_other_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "tiny.json"
    LatencyTable.create("torch", 1, 1, 3).save(out)
    assert (
        main(["lut", "build", "--model", "tiny", "--out", str(out), "--calibrate", "0", "--threads", "2", *FAST]) == 2
    )
    assert "threads" in unwrapped(capsys.readouterr().err)


def test_foreign_lut_needs_the_flag(tmp_path, capsys):
    out = tmp_path / "foreign.json"
    table = LatencyTable.create("torch", 1, 1, 3)
    table.fingerprint["torch"] = "0.0.1"
    table.save(out)
    assert main(["lut", "validate", "--lut", str(out), "--model", "tiny", "--samples", "2", "--json"]) == 2
    err = unwrapped(capsys.readouterr().err)
    assert "amc: error: LUT file" in err and "--allow-foreign-lut" in err


def test_info_and_a_missing_file(tmp_path, capsys):
    out = tmp_path / "empty.json"
    LatencyTable.create("onnxruntime", 1, 1, 3).save(out)
    assert main(["lut", "info", "--lut", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] == 0 and info["backend"] == "onnxruntime" and info["schema_version"] == 1
    assert main(["lut", "info", "--lut", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in unwrapped(capsys.readouterr().err)


def test_list_devices(capsys):
    assert main(["list", "devices"]) == 0
    listed = capsys.readouterr().out
    assert "roofline:rpi4-a72" in listed and "systolic:tpu-v1" in listed and "energy:eyeriss" in listed
