"""What amc writes, Distiller loads: every export passes the checks Distiller makes (amc/schedule/distiller_check.py),
and each check fires on the input Distiller refuses."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import yaml

from amc.cli.main import main
from amc.graph import build_layer_table
from amc.models import create_model
from amc.pruning import Strategy, StrategyMetadata
from amc.pruning.finegrained import LayerDensities
from amc.schedule import (
    DistillerScheduleWarning,
    Schedule,
    check_distiller,
    load_schedule,
    parse_distiller,
    save_schedule,
)
from amc.schedule.distiller import distiller_param, exact_sparsity

ERRORS = "error"


def _errors(data) -> list[str]:
    return [f"{issue.key}: {issue.problem}" for issue in check_distiller(data) if issue.severity == ERRORS]


def _schedules(name: str, size: tuple[int, int, int]):
    table = build_layer_table(create_model(name, in_channels=size[0]), size, name)
    meta = StrategyMetadata(model=name, input_size=size)
    strategy = Strategy.uniform(table, 0.6, metadata=meta)
    prunable = [layer.name for layer in table.layers if layer.spec.op != "dwconv"]
    densities = LayerDensities({prunable[1]: 0.3, prunable[-1]: 0.25}, name)
    return table, [Schedule(strategy=strategy), Schedule(densities=densities), Schedule(strategy, densities)]


@pytest.mark.parametrize(
    ("name", "size", "arch", "dataset", "known"),
    [
        ("resnet20", (3, 32, 32), "resnet20_cifar", "cifar10", True),
        ("resnet20", (1, 28, 28), "resnet20_cifar", "mnist", True),
        ("resnet20", (3, 16, 16), "resnet20_cifar", "cifar10", True),  # no Distiller dataset is 16x16: the arch's
        ("plain20", (3, 32, 32), "plain20_cifar", "cifar10", True),
        ("vgg16_cifar", (3, 32, 32), "vgg16_cifar", "cifar10", True),
        ("preact_resnet20", (3, 32, 32), "preact_resnet20_cifar_conv_ds", "cifar10", True),
        ("mobilenetv2", (3, 32, 32), "mobilenetv2", "cifar10", False),  # not a Distiller model: a warning
        ("torchvision:resnet18", (3, 64, 64), "resnet18", "imagenet", True),
    ],
)
def test_every_export_passes_distillers_checks_and_reads_back(tmp_path, name, size, arch, dataset, known) -> None:
    table, schedules = _schedules(name, size)
    for index, schedule in enumerate(schedules):
        path = tmp_path / f"{index}.yaml"
        save_schedule(schedule, path)
        text = path.read_text()
        data = yaml.safe_load(text)
        assert _errors(data) == [], text
        warnings_ = [issue for issue in check_distiller(data) if issue.severity != ERRORS]
        unknown = not known and schedule.strategy is not None
        assert [issue.key for issue in warnings_] == (["extensions.net_thinner.arch"] if unknown else [])
        if schedule.strategy:
            assert data["extensions"]["net_thinner"] == {
                "class": "FilterRemover",
                "thinning_func_str": "remove_filters",
                "arch": arch,
                "dataset": dataset,
            }
            assert all(p.get("epochs") == [0] for p in data["policies"] if "extension" in p or "group_type" in str(p))
        assert (f"Distiller has no model named '{name}'" in text) is (not known)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DistillerScheduleWarning)  # amc's own output reads back without a note
            back = load_schedule(path, table)
        assert back.kept_channels(table) == schedule.kept_channels(table)
        if schedule.densities:
            assert back.densities.densities == pytest.approx(schedule.densities.densities)
            levels = next(p for p in data["pruners"].values() if p["class"] == "SparsityLevelParameterPruner")
            assert levels["levels"] and not any(
                p["class"] == "AutomatedGradualPruner" for p in data["pruners"].values()
            )


def test_vgg_exports_put_module_inside_features(tmp_path) -> None:
    table, schedules = _schedules("vgg16_cifar", (3, 32, 32))
    save_schedule(schedules[2], tmp_path / "s.yaml")
    data = yaml.safe_load((tmp_path / "s.yaml").read_text())
    weights = [w for p in data["pruners"].values() for w in p.get("weights", p.get("levels", {}))]
    assert weights and all(w.startswith(("features.module.", "classifier.")) for w in weights)
    assert distiller_param("features.3", "vgg16", "module.") == "features.module.3.weight"
    assert distiller_param("layer1.0.conv1", "resnet20_cifar", "module.") == "module.layer1.0.conv1.weight"
    assert distiller_param("features.3", "vgg16", "") == "features.3.weight"


@pytest.mark.parametrize("total", [3, 7, 10, 16, 32, 64, 100, 512, 1000])
def test_written_sparsities_remove_exactly_the_channels_amc_removed(total: int) -> None:
    for removed in range(total):
        assert math.floor(exact_sparsity(removed, total) * total) == removed


def test_the_old_one_shot_agp_export_fails_the_checks() -> None:
    old = {
        "version": 1,
        "pruners": {"fine_pruner_0": {"class": "AutomatedGradualPruner", "initial_sparsity": 0.5,
                                      "final_sparsity": 0.5, "weights": ["module.fc.weight"]}},
        "policies": [{"pruner": {"instance_name": "fine_pruner_0"}, "starting_epoch": 0, "ending_epoch": 1,
                      "frequency": 1}],
    }  # fmt: skip
    problems = " ".join(_errors(old))
    assert "not greater than initial_sparsity" in problems and "span of 0" in problems


GOOD = {
    "version": 1,
    "pruners": {
        "filters": {
            "class": "L1RankedStructureParameterPruner",
            "group_type": "Filters",
            "desired_sparsity": 0.5,
            "weights": ["module.conv1.weight"],
        },
        "fine": {
            "class": "AutomatedGradualPruner",
            "initial_sparsity": 0.05,
            "final_sparsity": 0.5,
            "weights": ["module.fc.weight"],
        },
    },
    "extensions": {
        "net_thinner": {
            "class": "FilterRemover",
            "thinning_func_str": "remove_filters",
            "arch": "resnet20_cifar",
            "dataset": "cifar10",
        }
    },
    "lr_schedulers": {"lr": {"class": "StepLR", "step_size": 10}},
    "policies": [
        {"pruner": {"instance_name": "filters"}, "epochs": [0]},
        {"extension": {"instance_name": "net_thinner"}, "epochs": [0]},
        {"pruner": {"instance_name": "fine"}, "starting_epoch": 1, "ending_epoch": 10, "frequency": 2},
        {"lr_scheduler": {"instance_name": "lr"}, "starting_epoch": 0, "ending_epoch": 20, "frequency": 1},
    ],
}


def _edit(path: str, value):
    data = copy.deepcopy(GOOD)
    *parents, last = path.split("/")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is KeyError:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("policies", KeyError, "policies: is missing"),  # config.dict_config
        ("pruners/filters/class", "L3RankedPruner", "not a class Distiller defines"),  # config.build_component
        ("pruners/filters/sparsity", 0.5, "does not accept sparsity"),  # filter_kwargs
        ("pruners/filters/group_type", KeyError, "needs group_type"),
        ("pruners/filters/group_type", "Kernels", "'Kernels' is not one of"),  # LpRanked __init__
        ("pruners/filters/weights", [], "weights: is empty"),
        ("pruners/fine/final_sparsity", 0.05, "not greater than initial_sparsity"),  # AgpPruningRate.__init__
        ("pruners/fine/initial_sparsity", 0, "empty top-k"),  # create_mask_level_criterion
        ("policies/2/ending_epoch", 3, "span of 0"),  # AgpPruningRate.step
        ("policies/2", {"pruner": {"instance_name": "fine"}, "epochs": [1, 3]}, "leaves its frequency None"),
        ("policies/0/epochs", [], "not a non-empty list"),  # scheduler.add_policy
        ("policies/3/frequency", 0, "outside 1..20"),
        ("policies/3/ending_epoch", 0, "0 <= starting < ending"),
        ("policies/0/pruner/instance_name", "nope", "'nope' is not defined under 'pruners'"),
        ("policies/1", {"extension": {"instance_name": "net_thinner"}}, "needs 'epochs' or integer"),
        ("policies/1", {"thinner": {"instance_name": "net_thinner"}, "epochs": [0]}, "names no pruner"),
        ("extensions/net_thinner/thinning_func_str", "thin", "not one of Distiller's thinning functions"),
        ("extensions/net_thinner/dataset", "fashion-mnist", "gives Distiller no input shape"),
        ("extensions/net_thinner/dataset", KeyError, "needs dataset"),
        ("lr_schedulers/lr/class", "WarmupLR", "not a class Distiller defines for lr_schedulers"),
    ],
)
def test_each_distiller_check_fires(path: str, value, expected: str) -> None:
    assert _errors(GOOD) == []
    problems = " | ".join(_errors(_edit(path, value)))
    assert expected in problems, problems


def test_mask_gradients_needs_forward_only_masks() -> None:
    data = _edit("policies/0/pruner/args", {"mask_gradients": True})
    assert any("mask_on_forward_only" in problem for problem in _errors(data))


def test_unknown_arch_is_a_warning_only() -> None:
    data = _edit("extensions/net_thinner/arch", "my_net")
    assert _errors(data) == []
    assert [issue.key for issue in check_distiller(data)] == ["extensions.net_thinner.arch"]


def test_inspect_check_and_convert_from_the_cli(tmp_path, capsys) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    assert main(["schedule", "inspect", str(good), "--model", "resnet20", "--check"]) == 0
    assert "Distiller check: loads" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_edit("extensions/net_thinner/dataset", "fashion-mnist")))
    assert main(["schedule", "inspect", str(bad), "--model", "resnet20"]) == 0  # amc reads it
    capsys.readouterr()
    assert main(["schedule", "inspect", str(bad), "--model", "resnet20", "--check"]) == 2  # Distiller would not
    err = capsys.readouterr().err.replace("\n  ", " ")
    assert "Distiller would refuse it" in err and "'fashion-mnist'" in err and "classification_get_input_shape" in err
    # a JSON strategy: --check checks the YAML amc would write for it, and convert writes exactly that
    table = build_layer_table(create_model("resnet20"), (3, 32, 32), "resnet20")
    strategy = Strategy.uniform(table, 0.5, metadata=StrategyMetadata(model="resnet20", input_size=(3, 32, 32)))
    source = tmp_path / "s.json"
    save_schedule(strategy, source)
    assert main(["schedule", "inspect", str(source), "--model", "resnet20", "--check"]) == 0
    out = tmp_path / "s.yaml"
    assert main(["schedule", "convert", str(source), str(out), "--model", "resnet20"]) == 0
    assert _errors(yaml.safe_load(out.read_text())) == []
    back = parse_distiller(out.read_text(), table)
    assert back.kept_channels(table) == strategy.kept_channels(table)
