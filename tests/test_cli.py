"""The `amc` command: help that explains itself, JSON output, and bad input as one paragraph with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from amc.cli.main import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "amc.cli.main", *args], capture_output=True, text=True, timeout=300)


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
