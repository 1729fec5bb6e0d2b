"""Adaptive BN: statistics are the cumulative average over exactly the requested images, nothing else moves."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amc.pruning import adaptive_bn_


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.Dropout(0.9), nn.BatchNorm2d(4, momentum=0.3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2)
    )


def test_statistics_are_the_average_over_the_first_images_in_eval_mode_features() -> None:
    model = _net()
    batches = [(torch.randn(8, 3, 6, 6) * 3 + 1, torch.zeros(8)) for _ in range(5)]
    model(batches[0][0])  # materialise the lazy layer
    model.train()
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    adaptive_bn_(model, batches, num_images=20)  # 8 + 8 + 4 images
    with torch.no_grad():
        features = [model[0](x) for x, _ in batches[:2]] + [model[0](batches[2][0][:4])]
    bn = model[2]
    expected_mean = torch.stack([f.mean((0, 2, 3)) for f in features]).mean(0)
    expected_var = torch.stack([f.transpose(0, 1).flatten(1).var(1, unbiased=True) for f in features]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected_mean)
    torch.testing.assert_close(bn.running_var, expected_var)
    assert bn.momentum == 0.3 and model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())  # no gradient step


def test_plain_image_batches_and_eval_mode_are_restored() -> None:
    model = _net().eval()
    model(torch.randn(2, 3, 6, 6))
    adaptive_bn_(model, [torch.randn(4, 3, 6, 6) for _ in range(3)], num_images=512)
    assert not model.training and int(model[2].num_batches_tracked) == 3


def test_bad_image_count_is_an_error() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        adaptive_bn_(_net(), [torch.randn(4, 3, 6, 6)], num_images=0)
