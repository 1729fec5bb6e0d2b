"""Unit bundles: export on this machine, time with the standalone runner where amc and torch are not installed,
import the results as a LUT a search can price with (`amc lut export-units` / `amc_lut_runner.py` / `amc lut
import`), on the 4-layer test model with few repeats."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from amc.cli.main import main
from amc.costs.latency_tables import Grid, load_network, search_grid
from amc.costs.unit_bundle import RUNNER_NAME
from hwmodel.errors import HwModelError
from hwmodel.lut import LutCostModel
from hwmodel.lut.fingerprint import TIMING_METHOD

FAST = ["--repeats", "4", "--warmup", "1", "--no-progress"]
BLOCKED = ("torch", "amc", "hwmodel", "onnx", "torchvision", "scipy")
"""Packages the runner must not need: stubs of these that raise ImportError come first on its PYTHONPATH."""


def unwrapped(text: str) -> str:
    return text.replace("-\n  ", "-").replace("\n  ", " ")


@pytest.fixture(scope="module")
def no_amc_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which importing torch, amc, hwmodel or onnx fails (and leaves a mark that it was tried)."""
    stubs = tmp_path_factory.mktemp("stubs")
    marks = stubs / "attempts"
    marks.mkdir()
    for name in BLOCKED:
        (stubs / name).mkdir()
        (stubs / name / "__init__.py").write_text(
            f"open({str(marks / name)!r}, 'w').close()\nraise ImportError('{name} is blocked in this test')\n"
        )
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(stubs)
    env["AMC_TEST_MARKS"] = str(marks)
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "torch is blocked" in probe.stderr
    for mark in marks.iterdir():
        mark.unlink()
    return env


def run_runner(
    bundle: Path, env: dict[str, str], *flags: str, python: str = sys.executable, script: Path | None = None
) -> subprocess.CompletedProcess:
    """The bundle's runner (or `script`) run on `bundle` as a separate process in `env`."""
    found = subprocess.run(
        [python, str(script or bundle / RUNNER_NAME), str(bundle), "--quiet", *flags],
        env=env,
        capture_output=True,
        text=True,
        cwd=bundle.parent,
        timeout=120,
    )
    marks = Path(env.get("AMC_TEST_MARKS", "/nonexistent"))
    tried = sorted(path.name for path in marks.iterdir()) if marks.is_dir() else []
    assert not tried, f"the runner tried to import {tried}"
    return found


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "tiny"
    args = ["lut", "export-units", "--model", "tiny", "--calibrate", "2", "--validate", "3", "--out", str(out)]
    assert main([*args, *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def timed(bundle: Path, no_amc_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundle with complete results, timed by the runner without amc or torch."""
    copy = tmp_path_factory.mktemp("timed") / "tiny"
    shutil.copytree(bundle, copy)
    found = run_runner(copy, no_amc_env, "--save-every", "0")
    assert found.returncode == 0, found.stderr
    return copy


def fresh_copy(bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy, ignore=shutil.ignore_patterns("results.json"))
    return copy


def test_bundle_holds_the_search_grid_and_the_networks(bundle: Path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    network = load_network("tiny")
    assert {unit["key"] for unit in manifest["units"]} == {spec.key() for spec in search_grid(network.table, Grid())}
    assert [n["role"] for n in manifest["networks"]] == ["calibration"] * 2 + ["validation"] * 3
    assert manifest["networks"][0]["kept"] == {}  # the unpruned network first, as calibration_variants has it
    assert manifest["settings"] == {"runtime": "onnxruntime", "threads": 1, "warmup": 1, "repeats": 4, "rounds": 3}
    assert set(manifest["files"]) == {u["file"] for u in manifest["units"]} | {
        n["file"] for n in manifest["networks"]
    } | {r["file"] for r in manifest["round_trips"].values()}
    assert (bundle / RUNNER_NAME).read_text().startswith("#!/usr/bin/env python3")


def test_runner_finds_the_reorders_amc_finds_without_the_onnx_package(bundle: Path, tmp_path: Path):
    import onnxruntime as ort

    from hwmodel.lut import runner_script
    from hwmodel.lut.nchwc import reorder_shapes
    from hwmodel.spec import LayerSpec

    manifest = json.loads((bundle / "manifest.json").read_text())
    copy = fresh_copy(bundle, tmp_path)
    for unit in manifest["units"][:8]:
        runner_script.materialize(copy, unit)
        optimized = tmp_path / f"{unit['id']}.onnx"
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(optimized)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        ort.InferenceSession(str(copy / unit["file"]), options, providers=["CPUExecutionProvider"])
        ops = {op for domain, op in runner_script.node_ops(optimized.read_bytes()) if domain == "com.microsoft.nchwc"}
        spec = LayerSpec.from_dict(unit["spec"])
        assert len(reorder_shapes(optimized, spec)) == len({"ReorderInput", "ReorderOutput"} & ops)


def test_weights_are_external_data_the_runner_writes_and_deletes(
    bundle: Path, timed: Path, no_amc_env: dict[str, str], tmp_path: Path
):
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from amc.costs.unit_bundle import EMBED_BYTES
    from hwmodel.lut import runner_script
    from hwmodel.lut.backends import onnx_unit
    from hwmodel.spec import LayerSpec

    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["schema_version"] == runner_script.MANIFEST_SCHEMA_VERSION == 2
    entries = manifest["units"] + manifest["networks"]
    assert all((bundle / entry["file"]).stat().st_size < 4096 for entry in entries)  # no weights in the files
    assert not list(bundle.glob("*/*.bin")) and not list(timed.glob("*/*.bin"))  # not shipped; deleted when timed
    for entry in entries:
        model = onnx.load_model(str(bundle / entry["file"]), load_external_data=False)
        assert all(len(t.raw_data) < EMBED_BYTES for t in model.graph.initializer)
    unit = next(u for u in manifest["units"] if u["weights"] and "bn" in u["spec"]["fused"])
    copy = fresh_copy(bundle, tmp_path)
    path = runner_script.materialize(copy, unit)
    assert path is not None and path.stat().st_size == unit["weights"]["bytes"]
    # The same graph as amc's own unit, its large initializers drawn from the distributions onnx_unit uses.
    ours = onnx.load_model_from_string(onnx_unit(LayerSpec.from_dict(unit["spec"]))[0])
    theirs = onnx.load_model(str(copy / unit["file"]))
    assert [(n.op_type, list(n.input), n.attribute) for n in ours.graph.node] == [
        (n.op_type, list(n.input), n.attribute) for n in theirs.graph.node
    ]

    def shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
        return {t.name: list(t.dims) for t in model.graph.initializer}

    assert shapes(ours) == shapes(theirs)
    for tensor in theirs.graph.initializer:
        values = numpy_helper.to_array(tensor)
        assert values.dtype == np.float32 and np.isfinite(values).all()
        if tensor.name.endswith(("_scale", "_var")):
            assert values.min() >= 0.5 and values.max() <= 1.5
    session = ort.InferenceSession(str(copy / unit["file"]), providers=["CPUExecutionProvider"])
    x = np.zeros(unit["input_shape"], dtype=np.float32)
    assert np.isfinite(session.run(None, {"x": x})[0]).all()
    for version in (1, 3):  # a bundle that stores its weights otherwise is refused, not misread
        old = fresh_copy(bundle, tmp_path / f"v{version}")
        (old / "manifest.json").write_text(json.dumps({**manifest, "schema_version": version}))
        found = run_runner(old, no_amc_env)
        assert found.returncode == 2 and f"schema_version {version}" in found.stderr and "export" in found.stderr


def test_export_import_and_price_with_a_foreign_lut(timed: Path, tmp_path: Path, capsys):
    results = json.loads((timed / "results.json").read_text())
    assert results["complete"] and results["fingerprint"]["runner"] == "amc-unit-bundle"
    assert results["fingerprint"]["onnxruntime"] and results["fingerprint"]["timing"] == TIMING_METHOD
    out = tmp_path / "lut.json"
    assert main(["lut", "import", str(timed / "results.json"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MAPE" in printed and "within ±10%" in printed and "Spearman" in printed and "MACs proxy" in printed
    with pytest.raises(HwModelError, match="another device"):
        LutCostModel.open(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lut = LutCostModel.open(out, allow_foreign=True)
        network = load_network("tiny")
        assert lut.table.backend == "onnxruntime" and len(lut.table.overheads) == 1
        lut.require_network(network.table.specs(), "tiny", "a search")
        assert lut.bind(network.table.specs()).network_cost(network.table.specs()) > 0
        outside = network.table.specs()[1].with_channels(5, 7)  # off the grid: never in the bundle
        with pytest.raises(HwModelError, match="measured on another device"):
            lut.layer_cost(outside)
        from amc.config import load_config
        from amc.costs.registry import bound_to, make_cost_model

        config = load_config(None, {"model.name": "tiny", "cost.model": f"lut:{out}", "cost.allow_foreign_lut": True})
        priced = bound_to(make_cost_model(config, network.model, network.table), network.table)
        assert priced.network_cost(network.table.specs({0: 8})) > 0
    assert main(["lut", "import", str(timed / "results.json"), "--out", str(out)]) == 2
    assert "--force" in unwrapped(capsys.readouterr().err)
    assert main(["lut", "import", str(timed / "results.json"), "--out", str(out), "--force"]) == 0


def test_results_of_another_bundle_are_refused(timed: Path, tmp_path: Path, capsys):
    other = tmp_path / "other"
    assert main(["lut", "export-units", "--model", "tiny", "--calibrate", "2", "--validate", "0", "--out", str(other),
                 *FAST]) == 0  # fmt: skip
    shutil.copy(timed / "results.json", other / "results.json")
    assert main(["lut", "import", str(other / "results.json"), "--out", str(tmp_path / "lut.json")]) == 2
    assert "another bundle" in unwrapped(capsys.readouterr().err)
    assert main(["lut", "import", str(other / "results.json"), "--bundle", str(timed), "--out",
                 str(tmp_path / "lut.json")]) == 0  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["units"].popitem() and r.update(complete=False), "1 of 22 units"),
        (lambda r: next(iter(r["units"].values())).update(median_ms=float("nan")), "impossible time"),
        (lambda r: next(iter(r["networks"].values())).update(median_ms=-1.0), "impossible time"),
        (lambda r: r.update(schema_version=99), "schema_version 99"),
    ],
)
def test_bad_results_are_refused(timed: Path, tmp_path: Path, capsys, mutate, expected):
    copy = tmp_path / "bundle"
    shutil.copytree(timed, copy)
    results = json.loads((copy / "results.json").read_text())
    mutate(results)
    (copy / "results.json").write_text(json.dumps(results))
    assert main(["lut", "import", str(copy / "results.json"), "--out", str(tmp_path / "lut.json")]) == 2
    assert expected in unwrapped(capsys.readouterr().err)
    assert not (tmp_path / "lut.json").exists()


def test_a_killed_runner_resumes_to_the_same_entries(bundle: Path, timed: Path, no_amc_env, tmp_path: Path):
    copy = fresh_copy(bundle, tmp_path)
    command = [sys.executable, str(copy / RUNNER_NAME), str(copy), "--quiet", "--save-every", "0", "--batch", "2"]
    process = subprocess.Popen(command, env=no_amc_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = copy / "results.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if results.exists() and json.loads(results.read_text())["units"]:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait()
    partial = json.loads(results.read_text())
    killed = process.returncode == -signal.SIGKILL
    if killed:
        assert not partial["complete"]
    # A runner that stopped after its first batches (or one cut short by hand) is continued, not restarted.
    kept = dict(list(partial["units"].items())[:3])
    partial.update(complete=False, units=kept, networks={})
    results.write_text(json.dumps(partial))
    found = run_runner(copy, no_amc_env, "--batch", "2")
    assert found.returncode == 0, found.stderr
    resumed = json.loads(results.read_text())
    through = json.loads((timed / "results.json").read_text())
    assert resumed["complete"] and set(resumed["units"]) == set(through["units"])
    assert set(resumed["networks"]) == set(through["networks"])
    assert all(resumed["units"][key] == value for key, value in kept.items())  # not timed again


def test_a_resume_with_other_settings_is_refused(timed: Path, no_amc_env, tmp_path: Path):
    copy = tmp_path / "bundle"
    shutil.copytree(timed, copy)
    for flags, word in ((["--threads", "2"], "threads"), (["--repeats", "5"], "repeats")):
        found = run_runner(copy, no_amc_env, *flags)
        assert found.returncode == 2 and word in found.stderr and "other settings" in found.stderr


def test_runner_bad_input_is_one_paragraph_and_exit_2(bundle: Path, no_amc_env, tmp_path: Path):
    copy = fresh_copy(bundle, tmp_path)
    found = run_runner(copy, no_amc_env, "--help")
    assert found.returncode == 0 and "results.json" in found.stdout and "resum" in found.stdout.lower()
    found = run_runner(copy, no_amc_env, "--runtime", "tensorrt")
    assert found.returncode == 2 and "unknown runtime 'tensorrt'" in found.stderr
    blocked = {**no_amc_env}
    stubs = Path(blocked["PYTHONPATH"]) / "more"
    (stubs / "openvino").mkdir(parents=True)
    (stubs / "openvino" / "__init__.py").write_text("raise ImportError('No module named openvino')\n")
    blocked["PYTHONPATH"] = f"{stubs}{os.pathsep}{blocked['PYTHONPATH']}"
    found = run_runner(copy, blocked, "--runtime", "openvino")
    assert found.returncode == 2 and "pip install numpy openvino" in found.stderr
    first = json.loads((copy / "manifest.json").read_text())["units"][0]["file"]
    (copy / first).write_bytes(b"changed")
    found = run_runner(copy, no_amc_env)
    assert found.returncode == 2 and f"{first} has changed" in found.stderr and "Traceback" not in found.stderr
    (copy / first).unlink()
    found = run_runner(copy, no_amc_env)
    assert found.returncode == 2 and f"{first} is missing" in found.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    found = run_runner(empty, no_amc_env, script=copy / RUNNER_NAME)  # no manifest there
    assert found.returncode == 2 and "no manifest.json" in found.stderr
    assert not (copy / "results.json").exists()


def test_export_refuses_to_overwrite_a_bundle(bundle: Path, tmp_path: Path, capsys):
    out = tmp_path / "b"
    args = ["lut", "export-units", "--model", "tiny", "--calibrate", "2", "--validate", "0", "--out", str(out), *FAST]
    assert main(args) == 0
    assert main(args) == 2
    assert "--force" in unwrapped(capsys.readouterr().err)
    assert main([*args, "--force"]) == 0
    file = tmp_path / "a-file"
    file.write_text("")
    assert main([*args[: -len(FAST) - 2], "--out", str(file), *FAST]) == 2


@pytest.mark.slow
def test_runner_in_a_virtualenv_with_only_numpy_and_onnxruntime(bundle: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "numpy", "onnxruntime"], check=True, timeout=900)
    probe = subprocess.run([python, "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0
    copy = fresh_copy(bundle, tmp_path)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    found = run_runner(copy, env, python=python)
    assert found.returncode == 0, found.stderr
    assert main(["lut", "import", str(copy / "results.json"), "--out", str(tmp_path / "lut.json")]) == 0
