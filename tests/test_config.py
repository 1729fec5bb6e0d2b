"""Config loading: defaults, overrides, and errors that name the file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from amc.config import ExperimentConfig, load_config, parse_override, save_config
from amc.errors import UserError


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


def test_search_seeds_share_one_base_model_and_train_seed_changes_it() -> None:
    from amc.experiment import checkpoint_path

    base = checkpoint_path(load_config(None))
    assert checkpoint_path(load_config(None, {"experiment.seed": 3})) == base
    assert checkpoint_path(load_config(None, {"train.seed": 3})) != base
