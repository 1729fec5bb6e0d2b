"""Magnitude masks at the granularities of Mao et al. 2017 ("Exploring the regularity of sparse structure in CNNs").

A mask zeroes whole groups of weights, the groups with the smallest L1 norm (Mao's ranking), so that hardware can
skip them as units: element (one weight), vector (a 1 x kw kernel row, Mao's "1-D"), kernel (a kh x kw kernel,
"2-D"), filter (a whole output channel, kept as a mask: the layer keeps its shape), and N:M (in every group of M
consecutive input-channel weights at one output channel and kernel tap, the N largest are kept: NVIDIA's 2:4).
On a linear layer (or a 1x1 conv) a kernel row and a kernel are one weight, so vector and kernel fall back to
element there. Groups follow hwmodel.sparse.group_length, which prices them.

N:M fixes a layer's density at N/M, so as a search decision it is a per-layer on/off choice (density N/M or
dense): the agent picks which layers to make N:M, the budget clipping keeps the budget reachable, exactly as for
the other granularities on their density grid. A layer whose input channels per group are not a multiple of M
(a first conv on 1 or 3 channels, a depthwise conv) cannot be N:M and stays dense, as NVIDIA's ASP leaves it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from amc.errors import UserError

MASK_GRANULARITIES = ("element", "vector", "kernel", "filter", "nm")
"""The `search.granularity` values that mask weights (`channel` thins instead)."""
NM_FIX = "set search.nm to [N, M] with whole numbers 0 < N < M, e.g. [2, 4] (NVIDIA's 2:4)."


@dataclass(frozen=True)
class NM:
    """N kept of every M consecutive input-channel weights."""

    n: int = 2
    m: int = 4

    def __post_init__(self) -> None:
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (self.n, self.m))
        if not whole or not 0 < self.n < self.m:
            raise UserError(f"N:M sparsity {self.n!r}:{self.m!r} is not N < M with positive whole numbers.", fix=NM_FIX)

    @property
    def density(self) -> float:
        return self.n / self.m

    def eligible(self, weight: Tensor) -> bool:
        """Whether the weight's input channels come in whole groups of M."""
        return weight.dim() >= 2 and weight.shape[1] % self.m == 0


@dataclass(frozen=True)
class MaskPattern:
    """Which groups a mask zeroes: a granularity, and the N:M for `nm`."""

    granularity: str = "element"
    nm: NM = field(default_factory=NM)

    def __post_init__(self) -> None:
        if self.granularity not in MASK_GRANULARITIES:
            raise UserError(
                f"mask granularity {self.granularity!r} is not known.",
                fix=f"use one of {', '.join(MASK_GRANULARITIES)}.",
            )

    def to_dict(self) -> dict[str, object]:
        extra: dict[str, object] = {"nm": [self.nm.n, self.nm.m]} if self.granularity == "nm" else {}
        return {"granularity": self.granularity, **extra}

    def mask(self, weight: Tensor, sparsity: float) -> Tensor:
        """Boolean keep-mask of `weight`: the round(sparsity * groups) groups of smallest L1 norm are zeroed (nm:
        sparsity must be 1 - N/M, the N largest of each group of M are kept; 0 keeps everything)."""
        if not 0.0 <= sparsity < 1.0 or math.isnan(sparsity):
            raise UserError(f"sparsity {sparsity} is outside [0, 1).", fix="use a sparsity in [0, 1).")
        if self.granularity == "nm":
            return self._nm_mask(weight, sparsity)
        groups = _groups(weight.detach(), self.granularity)
        drop = round(sparsity * groups.shape[0])
        keep = torch.ones(groups.shape[0], dtype=torch.bool, device=weight.device)
        if drop:
            keep[torch.topk(groups.abs().sum(dim=1), drop, largest=False).indices] = False
        return keep[:, None].expand(groups.shape).reshape(weight.shape)

    def _nm_mask(self, weight: Tensor, sparsity: float) -> Tensor:
        if sparsity == 0.0:
            return torch.ones_like(weight, dtype=torch.bool)
        if not math.isclose(sparsity, 1.0 - self.nm.density, abs_tol=1e-6):
            raise UserError(
                f"N:M {self.nm.n}:{self.nm.m} fixes a layer's sparsity at {1 - self.nm.density:g}, not {sparsity:g}.",
                fix="give N:M layers density N/M (on) or 1 (off), or use another granularity for other densities.",
            )
        if not self.nm.eligible(weight):
            raise UserError(
                f"a weight of shape {tuple(weight.shape)} has input channels that are not a multiple of M={self.nm.m}.",
                fix="leave that layer dense (N:M needs whole groups of M input channels).",
            )
        # (out, in, kh, kw) -> (out, kh, kw, in): M consecutive input channels at one output channel and tap.
        taps = weight.detach().movedim(1, -1)
        groups = taps.reshape(-1, self.nm.m)
        keep = torch.zeros_like(groups, dtype=torch.bool)
        keep.scatter_(1, torch.topk(groups.abs(), self.nm.n, dim=1).indices, True)
        return keep.reshape(taps.shape).movedim(-1, 1)


def _groups(weight: Tensor, granularity: str) -> Tensor:
    """The weight as (groups, group size): each row one group of consecutive weights in (out, in, kh, kw) order."""
    kw = weight.shape[3] if weight.dim() == 4 else 1
    kernel = kw * (weight.shape[2] if weight.dim() == 4 else 1)
    size = {"element": 1, "vector": kw, "kernel": kernel, "filter": weight[0].numel()}[granularity]
    return weight.reshape(-1, size)
