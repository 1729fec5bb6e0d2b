"""AMC's least-squares reconstruction: refit the layers whose inputs lost channels, on sampled feature maps.

For every conv (k x k as well as 1 x 1, grouped too) or linear layer that reads pruned channels, sample a few
thousand output positions of the calibration images, take the original network's output there (Y, before bias)
and the thinned network's input patches there (X, im2col of only the sampled positions), and solve
min ||X W^T - Y||^2 + lambda ||W - W0||^2, W0 being the kept slice of the original weights. Layers are refit in
execution order during one forward pass of the thinned network, so each fit sees the inputs its already-refit
predecessors produce (He et al. 2017); the original network runs once before to record every Y.

The ridge term, scaled to the mean diagonal of X^T X, keeps the problem well posed when a layer has more weights
per output than sampled points (a classifier fed by 2048 features, a 3x3 conv over 512 channels); the normal
equations (accumulated in float32, solved in float64 by Cholesky, torch.linalg.lstsq if that fails) take a few
milliseconds per 1x1 layer, where the official code's sklearn fit is a known slowness complaint.

A search refits many thinnings of the same network on the same images, and the original network's side of every
fit (sampled positions, Y) depends only on the layer, its sampling seed and those images: a `ReferenceCache`
records it once and hands the same tensors back, so an episode whose fits are all cached skips the original
network's forward pass; results are bit-identical with or without it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amc.graph import LayerTable
from amc.pruning.calibration import Batches, default_image_count, stack_images

if TYPE_CHECKING:
    from amc.pruning.selection import LeastSquares


@dataclass(frozen=True)
class LayerFit:
    """One refit layer: seconds spent (sampling and solving), sampled points, weights per output, and the
    relative output error ||XW^T - Y|| / ||Y|| before (selected original weights) and after the refit."""

    name: str
    seconds: float
    points: int
    features: int
    error_before: float
    error_after: float


@dataclass(frozen=True)
class ReconstructionReport:
    """All refits of one thinning; `seconds` includes the two forward passes over the calibration images."""

    layers: tuple[LayerFit, ...]
    images: int
    seconds: float

    @property
    def seconds_per_layer(self) -> float:
        """Wall time per refit layer, forward passes included."""
        return self.seconds / len(self.layers) if self.layers else 0.0

    @property
    def fit_seconds_per_layer(self) -> float:
        """Sampling and solving only, per refit layer."""
        return sum(fit.seconds for fit in self.layers) / len(self.layers) if self.layers else 0.0


Sample = tuple[Tensor, Tensor]
"""Sampled output positions of one layer and the original output there (every channel, bias removed)."""


class ReferenceCache:
    """The original network's side of every refit of one search: the stacked calibration images and, per
    (layer, sampling seed), the sampled positions and original outputs, recorded once and reused.

    Bound to one original network, calibration set and sampling setting: used with any other, it starts afresh.
    It assumes the original's weights are not changed in place while bound (a search's base model is not).
    Holds at most `max_bytes` of samples (least recently used dropped first) plus one stack of calibration
    images; it pickles empty, so a problem sent to worker processes does not carry it.
    """

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self.forward_passes = 0
        """Forward passes of the original network run to fill it (work counted, for tests and benches)."""
        self._clear((), ())

    def _clear(self, objects: tuple[object, ...], settings: tuple[object, ...]) -> None:
        self._objects, self._settings = objects, settings
        self._images: Tensor | None = None
        self._samples: OrderedDict[tuple[str, int], Sample] = OrderedDict()
        self._bytes = 0

    @property
    def bytes(self) -> int:
        """Bytes of samples held now (images not counted)."""
        return self._bytes

    def __getstate__(self) -> dict[str, int]:
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.max_bytes, self.forward_passes = state["max_bytes"], 0
        self._clear((), ())

    def bind(self, original: nn.Module, calibration: Batches, images: int, points: int, device: torch.device) -> None:
        """Start afresh unless already bound to these very objects and these settings."""
        objects, settings = (original, calibration), (images, points, device)
        same = len(self._objects) == len(objects) and all(a is b for a, b in zip(self._objects, objects))
        if not same or self._settings != settings:
            self._clear(objects, settings)

    def images(self, calibration: Batches, count: int, device: torch.device) -> Tensor:
        if self._images is None:
            self._images = stack_images(calibration, count).to(device)
        return self._images

    def get(self, key: tuple[str, int]) -> Sample | None:
        sample = self._samples.get(key)
        if sample is not None:
            self._samples.move_to_end(key)
        return sample

    def put(self, key: tuple[str, int], sample: Sample) -> None:
        size = sum(tensor.numel() * tensor.element_size() for tensor in sample)
        if key in self._samples or size > self.max_bytes:
            return
        self._samples[key] = sample
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._samples.popitem(last=False)
            self._bytes -= sum(tensor.numel() * tensor.element_size() for tensor in dropped)


def reconstruct_(
    original: nn.Module,
    thinned: nn.Module,
    table: LayerTable,
    kept_in: Mapping[str, Sequence[int]],
    kept_out: Mapping[str, Sequence[int]],
    calibration: Batches,
    settings: LeastSquares,
    reference: ReferenceCache | None = None,
) -> ReconstructionReport:
    """Refit, in place, every layer of `thinned` whose input channels were pruned. `original` is not changed;
    `reference` (bound to `original` and `calibration`) spares recording what it already holds."""
    start = time.perf_counter()
    targets = [
        layer.name
        for layer in table.layers
        if len(kept_in[layer.name]) < layer.spec.in_channels and layer.spec.op != "dwconv"
    ]
    device = next(thinned.parameters()).device
    count = settings.images or default_image_count(table.input_size)
    reference = reference or ReferenceCache()
    reference.bind(original, calibration, count, settings.points, device)
    images = reference.images(calibration, count, device)
    if not targets:
        return ReconstructionReport((), images.shape[0], time.perf_counter() - start)
    recorded = _record_targets(original, images, _sampling_seeds(table, targets), settings.points, reference)
    samples = {name: (positions, values[:, list(kept_out[name])]) for name, (positions, values) in recorded.items()}
    fits: list[LayerFit] = []

    def refit(name: str):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            if name not in samples:
                return  # a module called twice is refit on its first call only
            positions, target = samples.pop(name)
            fits.append(_refit(name, module, inputs[0], positions, target, settings.ridge))
            if not samples:
                raise _Done  # later layers are not refit: their outputs are not needed

        return hook

    handles = [thinned.get_submodule(name).register_forward_pre_hook(refit(name)) for name in targets]
    _forward_once(thinned, images, handles)
    return ReconstructionReport(tuple(fits), images.shape[0], time.perf_counter() - start)


class _Done(Exception):
    """Raised by a hook to end a forward pass once everything it was run for is done."""


def _sampling_seeds(table: LayerTable, targets: list[str]) -> dict[str, int]:
    """Each target's sampling seed: its place among the layers any thinning could refit, so a layer samples the
    same positions whichever other layers an episode refits (and its recorded reference is reused)."""
    refittable = [layer.name for layer in table.layers if layer.in_sources and layer.spec.op != "dwconv"]
    seeds = {name: seed for seed, name in enumerate(refittable)}
    return {name: seeds[name] for name in targets}


def _record_targets(
    original: nn.Module, images: Tensor, seeds: dict[str, int], points: int, reference: ReferenceCache
) -> dict[str, Sample]:
    """Per target layer (`seeds`: its sampling seed): sampled output positions and the original output there (all
    channels, no bias). What `reference` lacks is recorded in one pass and added to it."""
    targets = list(seeds)
    samples: dict[str, Sample] = {}
    missing: dict[str, int] = {}
    for name, seed in seeds.items():
        sample = reference.get((name, seed))
        if sample is None:
            missing[name] = seed
        else:
            samples[name] = sample
    if not missing:
        return samples

    def record(name: str, seed: int):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if name in samples:
                return
            assert isinstance(module, (nn.Conv2d, nn.Linear))  # the layer table holds conv and linear layers only
            positions = _sample_positions(output, points, seed)
            values = _at_positions(output, positions)
            if module.bias is not None:
                values = values - module.bias
            samples[name] = (positions, values)
            reference.put((name, seed), samples[name])
            if len(samples) == len(targets):
                raise _Done

        return hook

    handles = [original.get_submodule(name).register_forward_hook(record(name, seed)) for name, seed in missing.items()]
    reference.forward_passes += 1
    _forward_once(original, images, handles)
    return samples


def _forward_once(model: nn.Module, images: Tensor, handles: list[torch.utils.hooks.RemovableHandle]) -> None:
    """One eval-mode, no-grad pass for the hooks in `handles` (one may end it early by raising `_Done`); the
    model's mode is restored, the hooks removed."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images)
    except _Done:
        pass
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()


def _sample_positions(output: Tensor, points: int, seed: int) -> Tensor:
    """Up to `points` distinct output positions: rows of (batch, row, col) for conv maps, (batch,) for linear."""
    generator = torch.Generator().manual_seed(seed)
    grid = output.shape[:1] + output.shape[2:] if output.dim() == 4 else output.shape[:-1]
    total = int(torch.tensor(grid).prod())
    flat = torch.randperm(total, generator=generator)[: min(points, total)].sort().values
    return torch.stack(torch.unravel_index(flat, tuple(grid)), dim=1).to(output.device)


def _at_positions(output: Tensor, positions: Tensor) -> Tensor:
    if output.dim() == 4:
        return output[positions[:, 0], :, positions[:, 1], positions[:, 2]]
    return output[tuple(positions.T)]


def _patches(module: nn.Conv2d | nn.Linear, x: Tensor, positions: Tensor) -> Tensor:
    """im2col of `x` at the sampled output positions only: (points, C_in * kh * kw), in the weight's layout."""
    if isinstance(module, nn.Linear):
        return x[tuple(positions.T)]
    assert not isinstance(module.padding, str)  # the layer table refuses string padding
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = module.kernel_size, module.stride, module.dilation, module.padding
    padded = F.pad(x, (pw, pw, ph, ph)).permute(0, 2, 3, 1)  # channels last: each tap is one (points, C) gather
    batch, rows, cols = positions[:, 0], positions[:, 1] * sh, positions[:, 2] * sw
    taps = [padded[batch, rows + u * dh, cols + v * dw] for u in range(kh) for v in range(kw)]
    return torch.stack(taps, dim=2).flatten(1)


def _refit(name: str, module: nn.Module, x: Tensor, positions: Tensor, target: Tensor, ridge: float) -> LayerFit:
    start = time.perf_counter()
    assert isinstance(module, (nn.Conv2d, nn.Linear))
    patches = _patches(module, x, positions)
    weight = module.weight.detach()
    groups = getattr(module, "groups", 1)
    out_per_group, in_per_group = weight.shape[0] // groups, patches.shape[1] // groups
    new_weight = weight.flatten(1).clone()
    before = after = 0.0
    for g in range(groups):
        rows = slice(g * out_per_group, (g + 1) * out_per_group)
        cols = slice(g * in_per_group, (g + 1) * in_per_group)
        fitted, err_before, err_after = _ridge_fit(patches[:, cols], target[:, rows], new_weight[rows], ridge)
        new_weight[rows] = fitted
        before += err_before
        after += err_after
    norm = float(target.norm()) or 1.0
    module.weight.data.copy_(new_weight.reshape(weight.shape))
    return LayerFit(
        name, time.perf_counter() - start, patches.shape[0], in_per_group, before**0.5 / norm, after**0.5 / norm
    )


def _ridge_fit(x: Tensor, y: Tensor, w0: Tensor, ridge: float) -> tuple[Tensor, float, float]:
    """argmin_W ||x W^T - y||^2 + lam ||W - w0||^2 and the squared residuals before / after."""
    residual = y - x @ w0.T
    gram = (x.T @ x).double()
    lam = ridge * float(gram.diagonal().mean()) + 1e-12
    gram.diagonal().add_(lam)
    rhs = (x.T @ residual).double()
    factor, info = torch.linalg.cholesky_ex(gram)
    delta = torch.cholesky_solve(rhs, factor) if int(info) == 0 else torch.linalg.lstsq(gram, rhs).solution
    fitted = (w0.double() + delta.T).to(w0.dtype)
    return fitted, float(residual.square().sum()), float((y - x @ fitted.T).square().sum())
