"""The `amc` command: help that explains itself, JSON output, and bad input as one paragraph with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amc.cli.main import main

SMOKE = str(Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "amc.cli.main", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("list", "inspect", "train", "search", "demo", "lut", "prune", "schedule"):
        assert f"    {command}" in out, command


def test_list_models_and_methods(capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "resnet56" in out and "torchvision:resnet50" in out
    assert main(["list", "methods"]) == 0
    assert "amc" in capsys.readouterr().out


def test_inspect_resnet50_json_has_published_totals() -> None:
    result = run_cli("inspect", "torchvision:resnet50", "--json")
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    assert set(table) >= {"layers", "groups", "total_macs", "total_params"}
    assert (table["total_macs"], table["total_params"]) == (4_089_184_256, 25_557_032)
    assert table["layers"][0]["name"] == "conv1" and table["layers"][0]["out_hw"] == [112, 112]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "resnet21"], "unknown model"),
        (["inspect", "resnet20", "--input-size", "1,28"], "bad input size"),
        (["train", "--dataset", "cifar10", "--data-root", "/nonexistent"], "cifar-10-batches-py"),
        (["search", "--config", "/nonexistent.yaml"], "cannot read config"),
    ],
)
def test_bad_input_is_one_paragraph_exit_2(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "key", "value", "close"),
    [
        (["--set", "search.method=netadpat"], "search.method", "netadpat", "netadapt"),
        (["--method", "sensitivty"], "search.method", "sensitivty", "sensitivity"),
        (["--set", "search.reward=error_logcost"], "search.reward", "error_logcost", "error_log_cost"),
        (["--executor", "rey"], "search.executor", "rey", "ray"),
        (["--set", "agent.algorithm=td4"], "agent.algorithm", "td4", "td3"),
        (["--set", "search.selection=lstq"], "search.selection", "lstq", "lstsq"),
        (["--cost-model", "rooflin:rpi4-a72"], "cost.model", "rooflin:rpi4-a72", "roofline:rpi4-a72"),
        (["--cost-model", "roofline:rpi4-a27"], "cost.model", "roofline:rpi4-a27", "rpi4-a72"),
        (["--set", "search.netadapt_step=0.1"], "search.netadapt_step", "moved to", "search.netadapt.step"),
    ],
)
def test_a_bad_config_value_fails_fast_before_any_work(
    tmp_path: Path, args: list[str], key: str, value: str, close: str
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "run"
    cache.mkdir()
    start = time.monotonic()
    result = run_cli("search", "--config", SMOKE, *args, "--out", str(out), env={"AMC_CACHE": str(cache)})
    elapsed = time.monotonic() - start
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert message.startswith("amc: error: ") and "Traceback" not in result.stderr
    assert key in message and value in message and close in message
    if value != "moved to":
        assert f"Did you mean '{close}" in message
    assert not out.exists() and not any(cache.iterdir())  # no run folder, no checkpoint, no LUT
    assert elapsed < 10, f"{elapsed:.1f} s: the config is read after something heavy"  # about 0.15 s when idle


def test_search_reads_its_config_before_importing_torch() -> None:
    code = (
        "import sys; from amc.cli.main import main; "
        f"code = main(['search', '--config', {SMOKE!r}, '--set', 'search.workers=0']); "
        "print(code, [name for name in ('torch', 'stable_baselines3', 'amc.search.methods') if name in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.split("\n")[-2] == "2 []", result.stdout + result.stderr
    assert "search.workers is 0; it must be at least 1" in " ".join(result.stderr.split())


def test_search_help_still_describes_every_method(capsys: pytest.CaptureFixture) -> None:
    from amc.config import SEARCH_METHODS

    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--set SECTION.KEY=VALUE" in out and "Optuna TPE" in out
    for method in SEARCH_METHODS:
        assert f"\n  {method} " in out, method
