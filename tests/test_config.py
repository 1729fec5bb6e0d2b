"""Config loading: defaults, overrides, and errors that name the file, key and fix."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from amc.config import (
    ALGORITHMS,
    AUTO_LUT,
    CHOICES,
    GRANULARITIES,
    LUT_BACKENDS,
    MOVED_KEYS,
    OPTIMIZERS,
    REWARDS,
    SEARCH_METHODS,
    SELECTIONS,
    ExperimentConfig,
    load_config,
    parse_override,
    save_config,
)
from amc.errors import UserError
from hwmodel.registry import list_cost_models

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"


def test_defaults_and_overrides() -> None:
    config = load_config(None, {"search.episodes": 7, "budget.ratio": 0.3, "model.name": None})
    assert isinstance(config, ExperimentConfig)
    assert config.search.episodes == 7 and config.budget.ratio == 0.3 and config.model.name == "resnet20"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("search:\n  episods: 3\n")
    with pytest.raises(UserError, match=r"bad.yaml.*search\.episods") as error:
        load_config(path)
    assert "episodes" in error.value.fix


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("search:\n  episodes: many\n")
    with pytest.raises(UserError, match=r"search\.episodes must be an integer"):
        load_config(path)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("search:\n  episodes: 3\n   lbound: [0.2\n")
    with pytest.raises(UserError, match=r"broken.yaml is not valid YAML at line \d+"):
        load_config(path)


def test_override_parsing() -> None:
    assert parse_override("agent.hidden=[64, 64]") == ("agent.hidden", [64, 64])
    with pytest.raises(UserError, match="section.key=value"):
        parse_override("search.episodes")


def test_resolved_config_round_trip(tmp_path: Path) -> None:
    config = load_config(None, {"agent.hidden": [32, 16], "cost.model": "params"})
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_method_settings_round_trip_in_their_sub_sections(tmp_path: Path) -> None:
    overrides = {
        "search.netadapt.step": 0.1, "search.netadapt.max_iterations": 3, "search.sensitivity.keeps": [0.75, 0.5],
        "search.bayes.storage": "sqlite:///study.db", "search.bayes.trial_batch": 4,
    }  # fmt: skip
    config = load_config(SMOKE, overrides)
    assert (config.search.netadapt.step, config.search.netadapt.max_iterations) == (0.1, 3)
    assert config.search.netadapt.decay == 0.96 and config.search.sensitivity.keeps == (0.75, 0.5)
    assert (config.search.bayes.storage, config.search.bayes.trial_batch) == ("sqlite:///study.db", 4)
    save_config(config, tmp_path / "config.yaml")
    written = yaml.safe_load((tmp_path / "config.yaml").read_text())["search"]
    assert written["netadapt"]["step"] == 0.1 and written["bayes"]["trial_batch"] == 4
    assert written["sensitivity"] == {"keeps": [0.75, 0.5]} and "netadapt_step" not in written
    assert load_config(tmp_path / "config.yaml") == config


def test_nested_sections_read_from_yaml_and_overridden_at_any_depth(tmp_path: Path) -> None:
    path = tmp_path / "nested.yaml"
    path.write_text("search:\n  netadapt:\n    step: 0.05\n    decay: 0.98\n")
    config = load_config(path, {"search.netadapt.decay": 0.9})
    assert (config.search.netadapt.step, config.search.netadapt.decay) == (0.05, 0.9)
    with pytest.raises(UserError, match=r"search\.netadapt is not a section"):
        load_config(None, {"search.netadapt": 3, "search.netadapt.step": 0.1})
    with pytest.raises(UserError, match=r"unknown key search\.netadapt\.stepp\. Did you mean 'step'\?"):
        load_config(None, {"search.netadapt.stepp": 0.1})


@pytest.mark.parametrize(("old", "new"), sorted(MOVED_KEYS.items()))
def test_a_moved_key_names_its_new_place_in_a_file_and_in_an_override(tmp_path: Path, old: str, new: str) -> None:
    value = "[0.5]" if old.endswith("keeps") else "'x'" if old.endswith("storage") else "1"
    path = tmp_path / "old.yaml"
    path.write_text(f"search:\n  {old.split('.')[1]}: {value}\n")
    with pytest.raises(UserError, match=rf"old\.yaml: {old} moved to {new}\.") as error:
        load_config(path)
    assert f"--set {new}=" in error.value.fix
    with pytest.raises(UserError, match=rf"override {old}: {old} moved to {new}\."):
        load_config(SMOKE, {old: yaml.safe_load(value)})


def test_every_shipped_config_loads() -> None:
    experiments = [path for path in sorted(SMOKE.parent.glob("**/*.yaml"))
                   if not {"devices", "schedules"} & set(path.relative_to(SMOKE.parent).parts)]  # fmt: skip
    assert len(experiments) >= 2
    for path in experiments:
        load_config(path)
    assert load_config(SMOKE).cost.model == "macs"


def test_every_shipped_schedule_reads_on_resnet20() -> None:
    from amc.graph import build_layer_table
    from amc.models import create_model
    from amc.schedule import parse_distiller

    table = build_layer_table(create_model("resnet20", in_channels=1, num_classes=10), (1, 28, 28), "resnet20")
    schedules = sorted((SMOKE.parent / "schedules").glob("*.yaml"))
    assert schedules
    for path in schedules:
        schedule = parse_distiller(path.read_text(), table, str(path), warn=False)
        assert schedule.timeline, path


def test_choice_tuples_equal_the_registries_they_name() -> None:
    from amc.agents.algorithms import ALGORITHMS as REAL_ALGORITHMS
    from amc.problem.base import REWARDS as REAL_REWARDS
    from amc.problem.factory import PROBLEMS
    from amc.pruning.selection import SELECTORS
    from amc.search.methods import METHODS
    from hwmodel.lut import BACKENDS

    assert tuple(METHODS) == SEARCH_METHODS
    assert tuple(REAL_ALGORITHMS) == ALGORITHMS
    assert set(SELECTIONS) == set(SELECTORS)
    assert set(LUT_BACKENDS) == set(BACKENDS)
    assert set(REWARDS) == set(REAL_REWARDS)
    assert set(GRANULARITIES) == set(PROBLEMS)


def test_optimizer_choices_are_what_training_builds() -> None:
    import torch

    from amc.training.loop import TrainSettings, make_optimizer

    layer = torch.nn.Linear(2, 2)
    for name in OPTIMIZERS:
        assert isinstance(make_optimizer(layer, TrainSettings(epochs=1, optimizer=name)), torch.optim.Optimizer)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer(layer, TrainSettings(epochs=1, optimizer="adam"))


@pytest.mark.parametrize(
    ("key", "bad", "close"),
    [
        ("search.method", "netadpat", "netadapt"),
        ("search.reward", "error_logcost", "error_log_cost"),
        ("search.granularity", "elements", "element"),
        ("search.executor", "rey", "ray"),
        ("search.selection", "lstq", "lstsq"),
        ("agent.algorithm", "td4", "td3"),
        ("cost.lut_backend", "onnx-runtime", "onnxruntime"),
        ("train.optimizer", "adam", "adamw"),
        ("finetune.optimizer", "sdg", "sgd"),
    ],
)
def test_a_name_outside_its_choices_is_refused_with_a_suggestion(key: str, bad: str, close: str) -> None:
    with pytest.raises(UserError) as error:
        load_config(SMOKE, {key: bad})
    message = f"{error.value.problem} {error.value.fix}"
    assert message.startswith(f"{SMOKE}, override {key}: {key} is {bad!r}")
    assert ", ".join(CHOICES[key]) in message and f"Did you mean {close!r}?" in message


def test_a_bad_name_in_the_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("search:\n  method: nope\n")
    with pytest.raises(UserError, match=r"bad\.yaml: search\.method is 'nope', which is not one of amc, ") as error:
        load_config(path)
    assert "Did you mean" not in error.value.problem  # nothing is close to 'nope'


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"search.workers": 0}, r"search\.workers is 0; it must be at least 1"),
        ({"search.bayes.trial_batch": 0}, r"search\.bayes\.trial_batch is 0; it must be at least 1"),
        ({"search.episodes": 0}, r"search\.episodes is 0"),
        ({"search.round_to": 0}, r"search\.round_to is 0"),
        ({"search.lbound": 0.0}, r"search\.lbound is 0\.0; it must be in \(0, 1\]"),
        ({"search.rbound": 1.5}, r"search\.rbound is 1\.5"),
        ({"search.lbound": 0.8, "search.rbound": 0.5}, r"search\.lbound 0\.8 is above search\.rbound 0\.5"),
        ({"budget.ratio": 0.0}, r"budget\.ratio is 0\.0"),
        ({"budget.ratio": 1.5}, r"budget\.ratio is 1\.5"),
        ({"budget.ratio": math.nan}, r"budget\.ratio is nan"),
        ({"budget.value": -1.0}, r"budget\.value is -1\.0; it must be a positive finite number"),
        ({"budget.value": math.inf}, r"budget\.value is inf"),
        ({"budget.value": math.nan}, r"budget\.value is nan"),
        ({"search.netadapt.step": 1.0}, r"search\.netadapt\.step is 1\.0"),
        ({"search.sensitivity.keeps": []}, r"search\.sensitivity\.keeps is \(\)"),
        ({"search.sensitivity.keeps": [0.5, 0.0]}, r"search\.sensitivity\.keeps is \(0\.5, 0\.0\)"),
        ({"agent.tau": 0.0}, r"agent\.tau is 0\.0"),
        ({"train.lr": math.nan}, r"train\.lr is nan"),
    ],
)
def test_cheap_ranges_are_checked(overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_config(SMOKE, overrides)


def test_nan_from_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.yaml"
    path.write_text("budget:\n  ratio: .nan\n")
    with pytest.raises(UserError, match=r"nan\.yaml: budget\.ratio is nan"):
        load_config(path)


def test_the_edges_of_the_ranges_are_allowed() -> None:
    assert load_config(SMOKE, {"budget.value": 1e6}).budget.value == 1e6
    config = load_config(None, {"budget.ratio": 1.0, "search.lbound": 1.0, "agent.gradient_steps": -1})
    assert (config.budget.ratio, config.search.lbound, config.search.rbound) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "name",
    ["macs", "params", AUTO_LUT, "sparse:macs", "sparse:roofline:rpi4-a72", "energy:eyeriss"]
    + [name for name, _ in list_cost_models() if "<" not in name],
)
def test_every_listed_cost_model_passes(name: str) -> None:
    assert load_config(SMOKE, {"cost.model": name}).cost.model == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("mac", r"unknown cost model 'mac'\. Did you mean 'macs'\?"),
        ("rooflin:rpi4-a72", r"Did you mean 'roofline:rpi4-a72'\?"),
        ("roofline:rpi4-a27", r"unknown roofline device 'rpi4-a27'.*Did you mean 'rpi4-a72'\?"),
        ("systolic:scalesim-32x23", r"unknown systolic device 'scalesim-32x23'.*Did you mean 'scalesim-32x32'\?"),
        ("roofline:scalesim-32x32", r"is a systolic profile, not roofline"),
        ("energy:eyeris", r"unknown energy preset 'eyeris'\. Did you mean 'eyeriss'\?"),
        ("sparse:systolic:nope", r"unknown systolic device 'nope'"),
        ("roofline:", r"needs a name after the colon"),
        ("lut:/nonexistent/table.json", r"the LUT file /nonexistent/table\.json does not exist"),
        ("sparse:lut:auto", r"lut:auto can only be the whole cost model"),
    ],
)
def test_a_bad_cost_model_or_device_is_refused_before_anything_is_built(name: str, message: str) -> None:
    with pytest.raises(UserError, match=rf"override cost\.model: cost\.model is '{name}'.*{message}"):
        load_config(SMOKE, {"cost.model": name})


def test_an_existing_lut_file_is_found_not_read(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    path.write_text("not even JSON: load_config only checks that the file is there")
    assert load_config(SMOKE, {"cost.model": f"lut:{path}"}).cost.model == f"lut:{path}"


def test_the_cost_model_check_can_be_skipped_for_a_given_object() -> None:
    config = load_config(None, {"cost.model": "lut:<in memory>"}, check_cost_model=False)
    assert config.cost.model == "lut:<in memory>"
    with pytest.raises(UserError, match="search.method"):
        load_config(None, {"cost.model": "mine", "search.method": "x"}, check_cost_model=False)


def test_reading_the_config_imports_nothing_heavy() -> None:
    heavy = ("torch", "stable_baselines3", "optuna", "gymnasium", "amc.search", "amc.pruning", "envs")
    code = (
        "import sys; from amc.config import load_config; "
        f"load_config({str(SMOKE)!r}, {{'cost.model': 'sparse:roofline:rpi4-a72'}}); "
        f"print([name for name in {heavy!r} if name in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_search_seeds_share_one_base_model_and_train_seed_changes_it() -> None:
    from amc.training.base_model import checkpoint_path

    base = checkpoint_path(load_config(None))
    assert checkpoint_path(load_config(None, {"experiment.seed": 3})) == base
    assert checkpoint_path(load_config(None, {"train.seed": 3})) != base
