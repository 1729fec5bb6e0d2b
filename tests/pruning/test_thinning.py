"""Thinning: real shapes equal the layer table's prediction, and the output equals the zero-masked original."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch import nn

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model, model_info
from amc.pruning import PruningError, Strategy, thin, thin_with_report

# every model the issue lists, at a small input so the whole set runs in seconds
ZOO = [
    ("resnet20", (3, 16, 16)),
    ("resnet56", (3, 16, 16)),
    ("plain20", (3, 16, 16)),
    ("vgg16_bn", (3, 32, 32)),
    ("mobilenetv2", (3, 16, 16)),
    ("torchvision:resnet18", (3, 32, 32)),
    ("torchvision:resnet50", (3, 32, 32)),
    ("torchvision:mobilenet_v2", (3, 32, 32)),
    ("torchvision:mobilenet_v3_small", (3, 32, 32)),
    ("torchvision:densenet121", (3, 32, 32)),
    ("torchvision:efficientnet_b0", (3, 32, 32)),
    ("torchvision:regnet_x_400mf", (3, 32, 32)),
    ("torchvision:shufflenet_v2_x1_0", (3, 32, 32)),
]


def _thin_and_compare(model: nn.Module, table, kept: dict[int, int], size, zero_removed_inputs) -> None:
    result = thin_with_report(model, table, kept)
    # oracle 1: the thinned network's own layer table equals the prediction
    after = build_layer_table(result.model, size, table.model_name)
    assert [layer.name for layer in after.layers] == [layer.name for layer in table.layers]
    for got, expected in zip(after.layers, table.specs(kept)):
        assert got.spec == expected, got.name
    # oracle 2: same output as the original with the removed input columns zeroed
    reference = zero_removed_inputs(copy.deepcopy(model), result.kept_in)
    x = torch.randn(2, *size)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), reference(x), rtol=1e-4, atol=1e-4)


SLOW_AT_SMALL_INPUT = {"torchvision:densenet121"}  # ~10 s; ConcatNet is the fast concat case


@pytest.mark.parametrize(
    ("name", "size"),
    [pytest.param(n, s, marks=pytest.mark.slow) if n in SLOW_AT_SMALL_INPUT else (n, s) for n, s in ZOO],
    ids=[name for name, _ in ZOO],
)
def test_every_listed_model_thins_to_the_predicted_network(
    name: str, size: tuple[int, int, int], randomize_bn, zero_removed_inputs
) -> None:
    model = randomize_bn(create_model(name, num_classes=10))
    table = build_layer_table(model, size, name)
    kept = Strategy.uniform(table, 0.5).kept_channels(table)
    assert any(count < table.groups[index].channels for index, count in kept.items())
    _thin_and_compare(model, table, kept, size, zero_removed_inputs)


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name, _ in ZOO])
def test_every_listed_model_at_its_own_input_size(name: str, randomize_bn, zero_removed_inputs) -> None:
    model = randomize_bn(create_model(name))
    size = model_info(name).input_size
    table = build_layer_table(model, size, name)
    _thin_and_compare(model, table, Strategy.uniform(table, 0.5).kept_channels(table), size, zero_removed_inputs)


@pytest.mark.parametrize("kind", ["concat", "depthwise", "grouped"])
def test_coupling_cases(kind: str, make_net, zero_removed_inputs) -> None:
    model = make_net(kind)
    table = build_layer_table(model, (3, 16, 16), kind)
    expected_kind = {"concat": "concat", "grouped": "residual", "depthwise": "depthwise"}[kind]
    assert any(expected_kind in group.kinds for group in table.groups)
    ratios = {group.index: keep for group, keep in zip(table.prunable_groups, (0.5, 0.25, 0.75, 0.5, 0.3))}
    kept = Strategy.from_keep_ratios(table, ratios, round_to=4).kept_channels(table)
    _thin_and_compare(model, table, kept, (3, 16, 16), zero_removed_inputs)


def test_residual_group_shares_one_set_of_channels_across_downsample_shortcuts(randomize_bn) -> None:
    model = randomize_bn(create_model("resnet20"))
    table = build_layer_table(model, (3, 16, 16), "resnet20")
    group = table.group_of("layer2.0.downsample.0")
    assert group is not None and "residual" in group.kinds
    assert {"layer2.0.conv2", "layer2.1.conv2", "layer2.2.conv2"} <= set(group.layers)
    result = thin_with_report(model, table, {group.index: 8})
    kept = {result.kept_out[name] for name in group.layers}
    assert len(kept) == 1 and len(next(iter(kept))) == 8
    assert result.kept_in["layer3.0.conv1"] == next(iter(kept))


def test_depthwise_follows_its_producer(make_net) -> None:
    model = make_net("depthwise")
    table = build_layer_table(model, (3, 16, 16), "depthwise")
    group = table.group_of("expand.0")
    assert group is not None and "depthwise.0" in group.layers
    result = thin_with_report(model, table, {group.index: 16})
    depthwise = result.model.get_submodule("depthwise.0")
    assert depthwise.in_channels == depthwise.out_channels == depthwise.groups == 16
    assert result.kept_out["depthwise.0"] == result.kept_out["expand.0"] == result.kept_in["project.0"]


def test_concat_maps_indices_with_offsets(make_net) -> None:
    model = make_net("concat")
    table = build_layer_table(model, (3, 16, 16), "concat")
    stem, branch_b = table.group_of("stem.0"), table.group_of("branch_b.0")
    result = thin_with_report(model, table, {stem.index: 8, branch_b.index: 8})
    kept = result.kept_in["mix.0"]
    assert len(kept) == 8 + 8 + 8
    assert list(kept[:8]) == list(range(8))  # branch_a untouched at the front
    assert [c - 8 for c in kept[8:16]] == list(result.kept_out["stem.0"])
    assert [c - 24 for c in kept[16:]] == list(result.kept_out["branch_b.0"])


def test_grouped_conv_keeps_equal_aligned_shares(make_net) -> None:
    model = make_net("grouped")
    table = build_layer_table(model, (3, 16, 16), "grouped")
    group = table.group_of("a.0")
    assert group.divisor == 4
    with pytest.raises(PruningError, match="multiple of 4"):
        thin(model, table, {group.index: 10})
    result = thin_with_report(model, table, {group.index: 16})
    assert result.model.get_submodule("b.0").weight.shape == (32, 4, 3, 3)


def test_caller_model_is_untouched_and_full_keep_is_identity(tiny_table) -> None:
    model, table = tiny_table
    before = {k: v.clone() for k, v in model.state_dict().items()}
    thinned = thin(model, table, {group.index: group.channels // 2 for group in table.groups})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(thin(model, table, {})(x), model(x))
    assert thinned.stem[0].out_channels == table.groups[0].channels // 2


def test_batchnorms_are_sliced_and_train_mode_is_kept(tiny_table) -> None:
    model, table = tiny_table
    model.train()
    result = thin_with_report(model, table, {0: 8})
    kept = list(result.kept_out["stem.0"])
    assert result.model.training and model.training
    assert result.kept_out["conv2"] == tuple(kept)
    assert torch.equal(result.model.stem[1].running_var, model.stem[1].running_var[kept])
    assert torch.equal(result.model.bn2.weight, model.bn2.weight[kept])


def test_l2_and_l1_can_pick_different_channels(tiny_table) -> None:
    model, table = tiny_table
    group = table.group_of("conv1")
    weight = model.conv1.weight.data
    weight.fill_(0.01)
    weight[0] = 0.0
    weight[0, 0, 0, 0] = 1.0  # one big weight: large L2, small L1
    for index in range(1, 16):
        weight[index] = 0.02
    l1 = thin_with_report(model, table, {group.index: 1}, selection="l1").kept_out["conv1"]
    l2 = thin_with_report(model, table, {group.index: 1}, selection="l2").kept_out["conv1"]
    assert l1 != (0,) and l2 == (0,)


@pytest.mark.parametrize(
    ("kept", "message"),
    [({99: 4}, "no coupling group 99"), ({0: 0}, "cannot keep 0"), ({0: 17}, "cannot keep 17")],
)
def test_bad_kept_counts_are_clear_errors(tiny_table, kept, message) -> None:
    model, table = tiny_table
    with pytest.raises(PruningError, match=message):
        thin(model, table, kept)


def test_shuffle_groups_are_not_prunable_and_refused_by_name() -> None:
    model = create_model("torchvision:shufflenet_v2_x0_5", num_classes=10)
    table = build_layer_table(model, (3, 32, 32), "shufflenet")
    blocked = [group for group in table.groups if not group.prunable]
    assert blocked and all("shuffle" in group.reason for group in blocked)
    assert any(group.prunable and "depthwise" in group.kinds for group in table.groups)
    group = blocked[0]
    with pytest.raises(PruningError, match=f"layer {group.leader}.*channel shuffle"):
        thin(model, table, {group.index: group.channels // 2})


def test_lstsq_without_calibration_is_a_clear_error(tiny_table) -> None:
    model, table = tiny_table
    with pytest.raises(PruningError, match="calibration"):
        thin(model, table, {0: 8}, selection="lstsq")


def test_a_table_that_disagrees_with_the_graph_is_refused(tiny_table) -> None:
    """Safety nets: never hand back a network the layer table does not describe."""
    model, table = tiny_table
    group = table.group_of("conv2")
    lonely = dataclasses.replace(group, layers=("stem.0",))
    wrong_members = dataclasses.replace(table, groups=(lonely, *table.groups[1:]))
    with pytest.raises(PruningError, match="layer stem.0: Torch-Pruning removes its channels together with"):
        thin(model, wrong_members, {group.index: 8})
    down = table.layer("down.0")
    wrong_counts = dataclasses.replace(
        table,
        layers=tuple(dataclasses.replace(layer, in_fixed=1) if layer is down else layer for layer in table.layers),
    )
    with pytest.raises(PruningError, match="layer down.0: thinning gave 8 in / 32 out.*predicts 9 / 32"):
        thin(model, wrong_counts, {group.index: 8})


def test_flow_hidden_from_autograd_is_caught_by_the_forward_check() -> None:
    class Hidden(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.head = nn.Linear(8, 2)
            self.side = nn.Linear(8, 2)

        def forward(self, x):
            y = self.conv(x).mean((2, 3))
            return self.head(y) + self.side(y.detach())  # tracing cannot see that side reads conv

    model = Hidden()
    table = build_layer_table(model, (3, 8, 8), "hidden")
    with pytest.raises(PruningError, match="fails its forward pass"):
        thin(model, table, {table.group_of("conv").index: 4})


def test_tracing_failure_is_a_clear_error(monkeypatch) -> None:
    import torch_pruning as tp

    def broken(*args, **kwargs):
        raise ZeroDivisionError("integer division or modulo by zero")

    monkeypatch.setattr(tp.DependencyGraph, "build_dependency", broken)
    with pytest.raises(UserError, match="cannot trace TinyResNet.*ZeroDivisionError"):
        build_layer_table(create_model("tiny"), (3, 16, 16), "tiny")
