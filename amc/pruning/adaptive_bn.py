"""Adaptive BatchNorm (EagleEye, ECCV 2020): re-estimate BN statistics of a pruned network, no gradient steps.

Pruning shifts every feature distribution downstream, so the stored running means and variances no longer fit
and raw accuracy collapses; re-estimating them on a few hundred training images restores most of it and makes
search-time accuracy predictive of fine-tuned accuracy. Only the BN layers run in training mode (dropout and
stochastic depth stay off), the statistics are plain cumulative averages over the batches (momentum=None), and
every module's mode and momentum are restored afterwards.
"""

from __future__ import annotations

import torch
from torch import nn

from amc.pruning.calibration import Batches, iter_images

_BatchNorm = nn.modules.batchnorm._BatchNorm


def adaptive_bn_(model: nn.Module, batches: Batches, num_images: int = 512) -> nn.Module:
    """Reset and re-estimate, in place, the running statistics of every BN layer of `model` on `num_images`
    images of `batches` (images or (images, labels) pairs); returns `model`."""
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not norms:
        return model
    modes = {module: module.training for module in model.modules()}
    momenta = {norm: norm.momentum for norm in norms}
    device = next(model.parameters()).device
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    try:
        with torch.no_grad():
            for images in iter_images(batches, num_images):
                if images.shape[0] > 1:  # BN cannot take statistics of a single image
                    model(images.to(device))
    finally:
        for module, training in modes.items():
            module.train(training)
        for norm, momentum in momenta.items():
            norm.momentum = momentum
    return model
