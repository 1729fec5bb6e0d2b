"""A plain install works: without the extras (optuna, ray, tensorboard) every command runs with its defaults, and
asking for a missing extra is one paragraph naming it (exit 2, no traceback)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from amc.errors import UserError
from amc.optional import EXTRAS, installed, require

ROOT = Path(__file__).resolve().parent.parent
SMOKE = str(ROOT / "configs" / "smoke.yaml")
OPTIONAL = tuple(EXTRAS)

# `python -c PRELUDE HIDDEN ARGS...` runs `amc ARGS...` with the comma-separated packages in HIDDEN unimportable
# (None in sys.modules: `import ray` and `import ray.util` raise ImportError, find_spec says not installed).
PRELUDE = (
    "import sys; [sys.modules.__setitem__(n, None) for n in sys.argv.pop(1).split(',') if n]; "
    "from amc.cli.main import main; sys.exit(main())"
)


def amc_without(hidden: tuple[str, ...], *args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE, ",".join(hidden), *args], capture_output=True, text=True, timeout=300,
        cwd=ROOT, env={**os.environ, "AMC_CACHE": str(cache)},
    )  # fmt: skip


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


# One interpreter runs several commands in turn (`python -c SEQUENCE HIDDEN JSON`): each starting torch afresh would
# cost seconds. It stops at the first command that does not exit 0, with that command's status.
SEQUENCE = (
    "import sys, json; [sys.modules.__setitem__(n, None) for n in sys.argv.pop(1).split(',') if n]; "
    "from amc.cli.main import main\n"
    "for argv in json.loads(sys.argv.pop(1)):\n"
    "    try:\n        code = main(argv)\n    except SystemExit as stop:\n        code = stop.code\n"
    "    if code:\n        print('failed:', argv, file=sys.stderr); sys.exit(code)"
)


def test_commands_run_without_the_extras(tmp_path: Path) -> None:
    """--help, inspect, prune --keep and a smoke search, each with every optional package unimportable."""
    run, pruned = tmp_path / "run", tmp_path / "pruned"
    commands = [
        ["--help"],
        ["inspect", "tiny"],
        ["prune", "tiny", "--keep", "0.5", "--out", str(pruned), "--no-onnx"],
        ["search", "--config", SMOKE, "--out", str(run), "--no-progress"],
    ]
    result = subprocess.run(
        [sys.executable, "-c", SEQUENCE, ",".join(OPTIONAL), json.dumps(commands)], capture_output=True, text=True,
        timeout=300, cwd=ROOT, env={**os.environ, "AMC_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert_ok(result)
    assert "usage: amc" in result.stdout
    assert (pruned / "model.pt").is_file()
    assert (run / "summary.json").is_file() and (run / "agent" / "agent.pt").is_file()
    assert not (run / "tensorboard").exists()  # skipped without tensorboard, not an ImportError


@pytest.mark.parametrize(
    ("hidden", "args", "extra"),
    [
        ("optuna", ("--method", "bayes"), "amc-toolkit[bayes]"),
        ("ray", ("--executor", "ray"), "amc-toolkit[ray]"),
        ("openvino", ("--set", "cost.lut_backend=openvino"), "amc-toolkit[openvino]"),
    ],
)
def test_asking_for_a_missing_extra_names_it(hidden: str, args: tuple[str, ...], extra: str, tmp_path: Path) -> None:
    result = amc_without(
        (hidden,), "search", "--config", SMOKE, *args, "--out", str(tmp_path / "run"), "--no-progress",
        cache=tmp_path / "cache",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())  # the paragraph is wrapped at 100 columns
    assert f"needs {hidden}" in message and extra in message, message
    assert not (tmp_path / "run").exists()  # refused before anything was trained or written


def test_search_code_without_the_cli_check_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The API path (no `check_config`): the method and the executor raise the same UserError themselves."""
    from amc.config import SearchSection
    from amc.search.baselines import run_bayes
    from amc.search.parallel import make_executor

    monkeypatch.setitem(sys.modules, "optuna", None)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"amc-toolkit\[bayes\]"):
        run_bayes(None, tmp_path)  # type: ignore[arg-type]  # refused before the task is looked at
    with pytest.raises(UserError, match=r"amc-toolkit\[ray\]"):
        make_executor(SearchSection(executor="ray"), lambda payload: payload, None)


def test_a_broken_optional_install_says_what_failed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "amc_fake_optional.py").write_text("import amc_fake_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(EXTRAS, "amc_fake_optional", "fake")
    assert installed("amc_fake_optional") and not installed("amc_fake_missing_dependency")
    with pytest.raises(UserError, match="installed but does not import") as error:
        require("amc_fake_optional", "the fake feature")
    assert "amc_fake_missing_dependency" in error.value.problem and "amc-toolkit[fake]" in error.value.fix


def test_pyproject_core_and_extras_match_the_code() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {requirement.split(">")[0].split("=")[0].split("<")[0] for requirement in project["dependencies"]}
    assert {"onnx", "onnxruntime", "matplotlib", "tqdm"} <= core  # lut:auto, ONNX export, plots, progress bars
    extras = project["optional-dependencies"]
    for package, extra in EXTRAS.items():
        assert package not in core, package
        assert any(requirement.startswith(package) for requirement in extras[extra]), (package, extra)
    (everything,) = extras["all"]
    assert set(everything.removeprefix("amc-toolkit[").removesuffix("]").split(",")) == set(extras) - {"all"}


def test_optional_packages_are_not_imported_at_module_level() -> None:
    """Only amc/search/baselines/bayes.py imports one (optuna) at the top, and nothing imports it at the top."""
    allowed = {"amc/search/baselines/bayes.py"}
    for path in sorted(p for package in ("amc", "envs", "hwmodel") for p in (ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] in EXTRAS:
                    assert relative in allowed, f"{relative} imports {name} at module level"
                assert name != "amc.search.baselines.bayes", f"{relative} imports the Optuna module at the top"
