"""Memory layout for fast CPU inference: oneDNN's convolutions run markedly faster on channels-last weights.

A conv whose weight is channels-last produces channels-last activations from ordinary (NCHW) input, so converting
the weights once makes every later forward of the network, and of every copy of it, use the faster kernels
(thinning keeps the layout of the network it thins). Values are unchanged; float results may differ in the last
bits (a different summation order).
"""

from __future__ import annotations

import torch
from torch import nn


def use_fast_layout_(model: nn.Module) -> nn.Module:
    """Convert, in place, a CPU model's 4-d weights to channels-last (GPU models are left as they are)."""
    parameter = next(model.parameters(), None)
    if parameter is not None and parameter.device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model


def is_channels_last(model: nn.Module) -> bool:
    """Whether the model's first 4-d weight is stored channels-last (the layout a thinned copy should keep)."""
    weight = next((p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
