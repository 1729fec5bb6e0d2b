"""Distiller schedules read as Distiller runs them: timelines, compounding cuts, mask-only pruners, group types,
names, unused sections and Distiller's own counts, on schedules shaped like Distiller's and DeGirum's."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pytest

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.schedule import DistillerScheduleWarning, load_schedule, parse_distiller, summarize
from amc.schedule.timeline import agp_sparsity

DATA = Path(__file__).parents[1] / "data"


def _table(name: str, size: tuple[int, int, int] = (3, 32, 32)):
    model = create_model(name, in_channels=size[0])
    return model, build_layer_table(model, size, name)


@pytest.fixture(scope="module")
def resnet20():
    return _table("resnet20")


@pytest.fixture(scope="module")
def plain20():
    return _table("plain20")


@pytest.fixture(scope="module")
def vgg16_cifar():
    return _table("vgg16_cifar")


@pytest.fixture(scope="module")
def resnet50():
    return _table("torchvision:resnet50", (3, 224, 224))


def _read(table, text: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DistillerScheduleWarning)
        return parse_distiller(text, table, "s.yaml")


def _error(table, text: str) -> str:
    with pytest.raises(UserError) as info:
        _read(table, text)
    return str(info.value)


def _out(schedule, table, layer: str) -> int:
    kept = schedule.kept_channels(table)
    return table.specs(kept)[table.layer(layer).index].out_channels


# ------------------------------------------------------------------------------------------- mask-only pruners


def test_dropfilter_is_training_time_regularization_not_removal(plain20) -> None:
    model, table = plain20
    with pytest.warns(DistillerScheduleWarning, match="discard_masks_at_minibatch_end.*dense"):
        schedule = load_schedule(DATA / "distiller_plain20_dropfilter.yaml", table)
    assert schedule.strategy is None and schedule.densities is None
    summary = summarize(schedule, table, model)
    assert summary.dense_macs == summary.ideal_macs == table.total_macs  # not 4x smaller
    assert summary.distiller_nnz == summary.original_distiller_params
    assert [step.epoch for step in schedule.timeline] == list(range(15, 220))
    assert all("mask-only" in step.actions[0].text for step in schedule.timeline)


def test_random_level_pruner_is_mask_only(resnet20) -> None:
    model, table = resnet20
    schedule = load_schedule(DATA / "distiller_resnet20_randomlevel.yaml", table, warn=False)
    assert schedule.strategy is None and schedule.densities is None
    assert any("RandomLevelStructureParameterPruner" in note and "dense" in note for note in schedule.notes)


def test_discarded_masks_make_any_pruner_mask_only_and_random_ones_stay_dense(resnet20) -> None:
    _, table = resnet20
    text = (
        "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    group_type: Filters\n"
        "    desired_sparsity: 0.5\n    weights: [module.layer1.0.conv1.weight]\n"
        "policies:\n  - pruner:\n      instance_name: p\n      args: {discard_masks_at_minibatch_end: True}\n"
        "    epochs: [0, 1]\n"
    )
    assert _read(table, text).strategy is None
    bernoulli = (
        "pruners:\n  p:\n    class: BernoulliFilterPruner\n    group_type: Filters\n    desired_sparsity: 0.1\n"
        "    weights: [module.layer1.0.conv1.weight]\npolicies:\n  - pruner:\n      instance_name: p\n"
        "    starting_epoch: 0\n    ending_epoch: 10\n    frequency: 1\n"
    )
    schedule = _read(table, bernoulli)
    assert schedule.strategy is None and schedule.densities is None
    assert any("last random mask" in note for note in schedule.notes)


# ------------------------------------------------------------------------------------------- timelines


def test_pruner_at_several_epochs_with_thinning_between_compounds() -> None:
    """Distiller's vgg19 schedule: 10% of 64 filters twice, thinned after each: 64 -> 58 -> 53."""
    _, table = _table("torchvision:vgg19")
    schedule = load_schedule(DATA / "distiller_vgg19_filter_rank.yaml", table, warn=False)
    assert [step.epoch for step in schedule.timeline] == [0, 1, 4, 5]
    after = [table.specs(step.kept)[table.layer("features.2").index].out_channels for step in schedule.timeline]
    assert after == [58, 58, 53, 53]
    assert _out(schedule, table, "features.5") == _out(schedule, table, "features.7") == 105  # 128 -> 116 -> 105
    assert _out(schedule, table, "features.21") == 415  # 512 -> 461 -> 415 (group_type 3D: filters)
    assert _out(schedule, table, "features.0") == 64 and _out(schedule, table, "features.25") == 512
    assert table.specs(schedule.kept_channels(table))[table.layer("features.5").index].in_channels == 53


def test_thinning_only_at_the_end_does_not_compound(vgg16_cifar) -> None:
    """The same pruner twice without thinning between masks the same 10% of the original filters."""
    _, table = vgg16_cifar
    text = (
        "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    group_type: Filters\n"
        "    desired_sparsity: 0.1\n    weights: [features.module.2.weight]\n"
        "extensions:\n  t:\n    class: FilterRemover\n    thinning_func_str: remove_filters\n"
        "    arch: vgg16_cifar\n    dataset: cifar10\n"
        "policies:\n  - pruner:\n      instance_name: p\n    epochs: [0, 4]\n"
        "  - extension:\n      instance_name: t\n    epochs: [5]\n"
    )
    assert _out(_read(table, text), table, "features.2") == 58


def test_starting_ending_frequency_fires_at_every_step(plain20) -> None:
    _, table = plain20
    text = (
        "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    group_type: Filters\n"
        "    desired_sparsity: 0.25\n    weights: [module.layer1.0.conv1.weight]\n"
        "extensions:\n  t:\n    class: FilterRemover\n    thinning_func_str: remove_filters\n"
        "    arch: plain20_cifar\n    dataset: cifar10\n"
        "policies:\n  - pruner:\n      instance_name: p\n    starting_epoch: 2\n    ending_epoch: 10\n"
        "    frequency: 3\n"
        "  - extension:\n      instance_name: t\n    starting_epoch: 2\n    ending_epoch: 10\n    frequency: 3\n"
    )
    schedule = _read(table, text)
    assert [step.epoch for step in schedule.timeline] == [2, 5, 8]
    sizes = [table.specs(step.kept)[table.layer("layer1.0.conv1").index].out_channels for step in schedule.timeline]
    assert sizes == [12, 9, 7]  # 16 - floor(4) = 12, 12 - floor(3) = 9, 9 - floor(2.25) = 7


def test_agp_ramp_is_reported_after_every_step(resnet20) -> None:
    """The hybrid schedule: AGP filter pruning 10% -> 50% over epochs 0..28 (step 2), thinning at 30, then
    element-wise AGP 5% -> 70% over 30..48 on two stage-3 convs."""
    model, table = resnet20
    schedule = load_schedule(DATA / "distiller_resnet20_hybrid.yaml", table, warn=False)
    steps = {step.epoch: step for step in schedule.timeline}
    assert sorted(steps) == list(range(0, 50, 2))
    span = ((30 - 0 - 1) // 2) * 2
    for epoch in range(0, 30, 2):
        expected = 0.5 + (0.1 - 0.5) * (1 - epoch / span) ** 3
        action = next(a for a in steps[epoch].actions if a.name == "stage2_filters")
        assert action.sparsity == pytest.approx(expected)
        masked = steps[epoch].masks["layer2.0.conv1"].count
        assert masked == math.floor(expected * 32)  # Distiller's floor, on the 32 filters it has before thinning
    assert (
        steps[28].masks["layer2.0.conv1"].count == 16 and steps[30].kept[table.group_of("layer2.0.conv1").index] == 16
    )
    fine_span = ((50 - 30 - 1) // 2) * 2
    summary = summarize(schedule, table, model)
    specs = table.specs(schedule.kept_channels(table))
    for step, figures in zip(schedule.timeline, summary.timeline):
        if step.epoch < 30:
            continue
        s = 0.7 + (0.05 - 0.7) * (1 - (step.epoch - 30) / fine_span) ** 3
        assert step.masks["layer3.1.conv1"].sparsity == pytest.approx(s)
        assert step.masks["layer3.1.conv1"].sparsity == agp_sparsity(0.05, 0.7, step.epoch, 30, 50, 2)
        conv = specs[table.layer("layer3.1.conv1").index].weight_count
        fc = step.masks["fc"].count * 10  # masked input columns of the classifier
        thinned = sum(spec.weight_count for spec in specs)
        assert figures.distiller_nnz == thinned - 2 * int(s * conv) - fc
    assert summary.timeline[-1].distiller_nnz == summary.distiller_nnz
    assert summary.timeline[-1].ideal_macs == pytest.approx(summary.ideal_macs)
    assert summary.timeline[0].weight_sparsity < summary.timeline[-1].weight_sparsity


# ------------------------------------------------------------------------------------------- group types


def test_3d_is_filters(resnet20) -> None:
    _, table = resnet20
    text = (
        "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    group_type: {}\n"
        "    desired_sparsity: 0.5\n    weights: [module.layer2.1.conv1.weight]\n"
    )
    three_d, filters = (_read(table, text.format(kind)) for kind in ("3D", "Filters"))
    assert three_d == filters and _out(three_d, table, "layer2.1.conv1") == 16


THIN = (
    "extensions:\n  t:\n    class: ChannelRemover\n    thinning_func_str: {}\n    arch: vgg16_cifar\n"
    "    dataset: cifar10\n"
)
ROWS = (
    "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    group_type: {}\n    desired_sparsity: 0.25\n"
    "    weights: [classifier.weight]\n{}policies:\n  - pruner:\n      instance_name: p\n    epochs: [0]\n{}"
)
THIN_POLICY = "  - extension:\n      instance_name: t\n    epochs: [0]\n"


@pytest.mark.parametrize("group_type", ["Rows", "Channels"])
def test_rows_on_a_linear_layer_mask_its_input_columns(vgg16_cifar, group_type: str) -> None:
    _, table = vgg16_cifar
    classifier = table.layer("classifier").index
    removed = _read(table, ROWS.format(group_type, THIN.format("remove_channels"), THIN_POLICY))
    specs = table.specs(removed.kept_channels(table))
    assert (specs[classifier].in_channels, specs[classifier].out_channels) == (384, 10)  # outputs stay the classes
    assert _out(removed, table, "features.28") == 384  # the columns' producer loses those filters
    masked = _read(table, ROWS.format(group_type, THIN.format("remove_filters"), THIN_POLICY))
    assert masked.strategy is None and masked.densities.densities == {"classifier": 0.75}
    assert any("not removed by any later thinning" in note for note in masked.notes)


def test_rows_on_a_hidden_linear_layer_do_not_remove_its_outputs() -> None:
    _, table = _table("vgg16_bn")
    text = (
        "pruners:\n  p:\n    class: L2RankedStructureParameterPruner\n    group_type: Rows\n"
        "    desired_sparsity: 0.5\n    weights: [module.classifier.0.weight]\n"
    )
    schedule = _read(table, text)
    specs = table.specs(schedule.kept_channels(table))
    first = specs[table.layer("classifier.0").index]
    assert (first.in_channels, first.out_channels) == (256, 512)
    assert any("no thinning extension" in note for note in schedule.notes)


def test_filters_of_a_linear_layer_and_2d_groups_are_refused(vgg16_cifar) -> None:
    _, table = vgg16_cifar
    text = ROWS.format("Filters", "", "")
    assert re.search(r"line 6.*linear layer's weight.*Rows or Channels", _error(table, text), re.S)
    assert "group_type '2D'" in _error(table, ROWS.format("2D", "", ""))


def test_blocks_are_element_density() -> None:
    _, table = _table("torchvision:resnet50", (3, 64, 64))
    text = (
        "pruners:\n  b:\n    class: L1RankedStructureParameterPruner_AGP\n    initial_sparsity: 0.05\n"
        "    final_sparsity: 0.70\n    group_type: Blocks\n    kwargs:\n      block_shape: [1, 8, 1, 1]\n"
        "    weights: [module.layer1.0.conv2.weight, module.layer3.0.conv1.weight]\n"
        "policies:\n  - pruner:\n      instance_name: b\n    starting_epoch: 0\n    ending_epoch: 30\n"
        "    frequency: 3\n"
    )
    schedule = _read(table, text)
    assert schedule.strategy is None
    assert schedule.densities.densities == pytest.approx({"layer1.0.conv2": 0.3, "layer3.0.conv1": 0.3})
    bad = text.replace("[1, 8, 1, 1]", "[1, 8, 3, 3]")
    assert "block_shape" in _error(table, bad)


# ------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "weight",
    [
        "features.module.28.weight",
        "module.features.28.weight",
        "features.28.weight",
        "module.features.module.28.weight",
    ],
)
def test_module_may_appear_anywhere_in_a_name(vgg16_cifar, weight: str) -> None:
    _, table = vgg16_cifar
    text = (
        "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    group_type: Filters\n"
        f"    desired_sparsity: 0.5\n    weights: [{weight}]\n"
    )
    assert _out(_read(table, text), table, "features.28") == 256


def test_unknown_names_are_refused_with_the_fix(vgg16_cifar) -> None:
    _, table = vgg16_cifar
    text = (
        "pruners:\n  p:\n    class: AutomatedGradualPruner\n    initial_sparsity: 0.05\n    final_sparsity: 0.5\n"
        "    weights: [features.module.3.weight]\n"
    )
    message = _error(table, text)
    assert "line 6" in message and "'features.module.3.weight'" in message and "features.module.0.weight" in message


# ------------------------------------------------------------------------------------------- unused sections


def test_regularizers_are_named_and_not_counted(resnet20) -> None:
    _, table = resnet20
    schedule = load_schedule(DATA / "distiller_resnet20_ssl_channels.yaml", table, warn=False)
    assert schedule.strategy is None and schedule.densities is None
    assert any("channels_regularizer (GroupLassoRegularizer)" in note for note in schedule.notes)
    assert [step.epoch for step in schedule.timeline] == [179]


@pytest.mark.parametrize(
    ("fixture", "model", "expected"),
    [
        ("distiller_preact_resnet20_pact.yaml", "preact_resnet20", "pact_quantizer (PACTQuantizer)"),
        ("distiller_vgg16_cifar_baseline.yaml", "vgg16_cifar", "training_lr (StepLR)"),
    ],
)
def test_schedules_without_pruners_are_dense_with_a_note(fixture: str, model: str, expected: str) -> None:
    network, table = _table(model)
    schedule = load_schedule(DATA / fixture, table, warn=False)
    assert schedule.strategy is None and schedule.densities is None
    assert any(expected in note for note in schedule.notes)
    assert any("no pruners" in note and "dense" in note for note in schedule.notes)
    assert summarize(schedule, table, network).dense_macs == table.total_macs


def test_unscheduled_pruners_and_the_missing_thinning_step_are_noted(resnet20) -> None:
    _, table = resnet20
    notes = load_schedule(DATA / "distiller_resnet20_hybrid.yaml", table, warn=False).notes
    assert any("never_scheduled" in note and "no policy" in note for note in notes)
    assert any("pruning_lr (StepLR)" in note for note in notes)
    text = (
        "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    group_type: Filters\n"
        "    desired_sparsity: 0.5\n    weights: [module.layer1.0.conv1.weight]\n"
        "policies:\n  - pruner:\n      instance_name: p\n    epochs: [0]\n"
    )
    schedule = _read(table, text)
    assert _out(schedule, table, "layer1.0.conv1") == 8
    assert any("no thinning extension" in note and "amc removes them" in note for note in schedule.notes)


# ------------------------------------------------------------------------------------------- Distiller's counts


@pytest.mark.parametrize(
    ("fixture", "nnz", "gmacs"),
    [
        ("distiller_resnet50_degirum70.yaml", 7_481_351, 1.846),
        ("distiller_resnet50_degirum83.yaml", 4_240_764, 1.143),
        ("distiller_resnet50_degirum85.yaml", 3_935_859, 0.714),
    ],
)
def test_degirum_pruned_resnet50s_count_as_distiller_counts(resnet50, fixture: str, nnz: int, gmacs: float) -> None:
    """DeGirum's table (github.com/DeGirum/pruned-models): 7.48 M / 4.24 M / 3.93 M parameters are Distiller's NNZ
    of conv and linear weights; amc's own total also counts BatchNorm and biases."""
    model, table = resnet50
    summary = summarize(load_schedule(DATA / fixture, table, warn=False), table, model)
    assert summary.original_distiller_params == summary.distiller_params == 25_502_912
    assert summary.original_params == 25_557_032  # + 53,120 BatchNorm parameters + 1,000 biases
    assert summary.distiller_nnz == nnz
    assert summary.ideal_macs / 1e9 == pytest.approx(gmacs, rel=2e-3)  # DeGirum's "ideal number of MACs"
    assert summary.ideal_params - summary.distiller_nnz == pytest.approx(54_120, abs=60)


# ------------------------------------------------------------------------------------------- bad policies


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("    starting_epoch: 0\n    ending_epoch: 10\n    frequency: 0\n", r"line 12.*frequency 0 must be in 1..10"),
        ("    starting_epoch: 5\n    ending_epoch: 5\n    frequency: 1\n", r"line 11.*0 <= starting < ending"),
        ("    starting_epoch: 0\n    frequency: 1\n", r"line 8.*neither 'epochs' nor ending_epoch"),
        ("    epochs: 3\n", r"line 10.*epochs = 3 is not a non-empty list"),
        ("    epochs: [0, 2]\n", r"line 10.*AGP pruner p with 'epochs'.*frequency"),
        ("    starting_epoch: 0\n    ending_epoch: 1\n    frequency: 1\n", r"line 11.*no span.*> 0"),
    ],
)
def test_bad_policies_are_clear_errors(resnet20, policy: str, expected: str) -> None:
    _, table = resnet20
    text = (
        "pruners:\n  p:\n    class: AutomatedGradualPruner\n    initial_sparsity: 0.05\n    final_sparsity: 0.5\n"
        "    weights: [module.fc.weight]\npolicies:\n  - pruner:\n      instance_name: p\n" + policy
    )
    assert re.search(expected, _error(table, text), re.S)


def test_one_shot_agp_as_older_amc_wrote_it_is_refused_as_distiller_refuses_it(resnet20) -> None:
    _, table = resnet20
    text = (
        "pruners:\n  fine_pruner_0:\n    class: AutomatedGradualPruner\n    initial_sparsity: 0.5\n"
        "    final_sparsity: 0.5\n    weights: [module.fc.weight]\n"
        "policies:\n  - pruner:\n      instance_name: fine_pruner_0\n    starting_epoch: 0\n    ending_epoch: 1\n"
        "    frequency: 1\n"
    )
    message = _error(table, text)
    assert "line 5" in message and "final_sparsity > initial_sparsity" in message and "SparsityLevel" in message


def test_unknown_policy_kinds_and_sections_are_errors(resnet20) -> None:
    _, table = resnet20
    assert "names none of pruner" in _error(table, "policies:\n  - thing: {instance_name: x}\n    epochs: [0]\n")
    assert "line 1" in _error(table, "policies: {a: 1}\n")
    bad_thinner = (
        "extensions:\n  t: {class: FilterRemover, thinning_func_str: shrink, arch: resnet20_cifar, dataset: cifar10}\n"
        "policies:\n  - extension: {instance_name: t}\n    epochs: [0]\n"
    )
    assert re.search(r"line 2.*thinning_func_str 'shrink'", _error(table, bad_thinner), re.S)
