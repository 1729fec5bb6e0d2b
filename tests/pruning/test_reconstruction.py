"""Least-squares reconstruction: exact where an exact refit exists, never worse than the selected weights."""

from __future__ import annotations

import pickle

import torch
from torch import Tensor, nn

from amc.graph import build_layer_table
from amc.models import create_model
from amc.pruning import LeastSquares, NormSelector, thin, thin_with_report
from amc.pruning.reconstruction import ReferenceCache


class Redundant(nn.Module):
    """Half of `a`'s filters are scaled copies of the other half (and likewise for `b`), with only positively
    homogeneous ops in between, so removing the copies loses nothing a refit of the next layer cannot recover."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.b = nn.Conv2d(8, 6, 3, padding=1, bias=False)
        self.fc = nn.Linear(6, 5)
        with torch.no_grad():
            self.a.weight[4:] = 0.5 * self.a.weight[:4]
            self.b.weight[3:] = 2.0 * self.b.weight[:3]

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.relu(self.b(self.a(x))).mean((2, 3)))


def test_exact_refit_of_kxk_conv_and_linear_consumers() -> None:
    torch.manual_seed(0)
    model = Redundant().eval()
    table = build_layer_table(model, (3, 8, 8), "redundant")
    kept = {table.group_of("a").index: 4, table.group_of("b").index: 3}
    images = [torch.randn(16, 3, 8, 8) for _ in range(2)]
    x = torch.randn(4, 3, 8, 8)
    plain = thin(model, table, kept)
    selector = LeastSquares(NormSelector(1), points=2000, images=32, ridge=1e-10)
    result = thin_with_report(model, table, kept, selection=selector, calibration=images)
    assert result.kept_out["a"] == (0, 1, 2, 3)
    with torch.no_grad():
        assert not torch.allclose(plain(x), model(x), atol=1e-3)
        torch.testing.assert_close(result.model(x), model(x), rtol=1e-4, atol=1e-4)
    report = result.reconstruction
    assert [fit.name for fit in report.layers] == ["b", "fc"]
    b, fc = report.layers
    assert (b.features, fc.features) == (4 * 9, 3)
    assert b.points == 2000 and fc.points == 32  # a linear layer has one point per image
    assert b.error_after < 1e-5 < b.error_before
    assert report.images == 32 and report.seconds > 0 and report.seconds_per_layer > 0


def test_refit_never_increases_the_sampled_error_on_a_residual_net(randomize_bn) -> None:
    torch.manual_seed(0)
    model = randomize_bn(create_model("resnet20"))
    table = build_layer_table(model, (3, 16, 16), "resnet20")
    kept = {group.index: group.channels // 2 for group in table.prunable_groups}
    result = thin_with_report(model, table, kept, selection="lstsq", calibration=[torch.randn(32, 3, 16, 16)])
    fits = result.reconstruction.layers
    assert len(fits) == sum(1 for layer in table.layers if layer.in_sources)
    assert all(fit.error_after <= fit.error_before + 1e-9 for fit in fits)
    x = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        refit_gap = (result.model(x) - model(x)).norm()
        plain_gap = (thin(model, table, kept)(x) - model(x)).norm()
    assert refit_gap < plain_gap


def test_grouped_consumer_is_refit_group_by_group(make_net) -> None:
    torch.manual_seed(0)
    model = make_net("grouped")
    table = build_layer_table(model, (3, 16, 16), "grouped")
    kept = {table.group_of("a.0").index: 16}
    result = thin_with_report(model, table, kept, selection="lstsq", calibration=[torch.randn(16, 3, 16, 16)])
    (fit,) = result.reconstruction.layers
    assert fit.name == "b.0" and fit.features == 4 * 9  # 16 kept inputs / 4 groups, 3x3 taps
    assert fit.error_after <= fit.error_before


def _thinned_weights(model: nn.Module, table, kept, calibration, reference) -> dict[str, Tensor]:
    result = thin_with_report(model, table, kept, selection="lstsq", calibration=calibration, reference=reference)
    return result.model.state_dict()


def test_reference_cache_records_the_original_once_and_changes_no_weight(randomize_bn) -> None:
    torch.manual_seed(0)
    model = randomize_bn(create_model("resnet20"))
    table = build_layer_table(model, (3, 16, 16), "resnet20")
    calibration = [torch.randn(32, 3, 16, 16)]
    half = {group.index: group.channels // 2 for group in table.prunable_groups}
    quarter = {group.index: group.channels // 4 for group in table.prunable_groups}
    cache = ReferenceCache()
    for kept in (half, quarter, half):
        uncached = _thinned_weights(model, table, kept, calibration, None)
        cached = _thinned_weights(model, table, kept, calibration, cache)
        assert uncached.keys() == cached.keys()
        assert all(torch.equal(uncached[key], cached[key]) for key in uncached)
    assert cache.forward_passes == 1  # same layers refit each time: the later thinnings reuse the first's record
    assert cache.bytes > 0


def test_reference_cache_starts_afresh_on_other_images_and_respects_its_size_limit(randomize_bn) -> None:
    torch.manual_seed(0)
    model = randomize_bn(create_model("resnet20"))
    table = build_layer_table(model, (3, 16, 16), "resnet20")
    kept = {group.index: group.channels // 2 for group in table.prunable_groups}
    first, second = [torch.randn(32, 3, 16, 16)], [torch.randn(32, 3, 16, 16)]
    cache = ReferenceCache()
    _thinned_weights(model, table, kept, first, cache)
    on_second = _thinned_weights(model, table, kept, second, cache)
    assert cache.forward_passes == 2
    assert all(
        torch.equal(value, _thinned_weights(model, table, kept, second, None)[key]) for key, value in on_second.items()
    )
    tiny = ReferenceCache(max_bytes=1)
    for _ in range(2):
        _thinned_weights(model, table, kept, first, tiny)
    assert tiny.bytes == 0 and tiny.forward_passes == 2  # nothing fits, so every refit records afresh
    assert pickle.loads(pickle.dumps(cache)).bytes == 0  # a problem sent to worker processes carries no samples
