"""torch-cuda: PyTorch eager on one CUDA GPU, each layer unit and network timed with CUDA events.

The unit is the one the CPU torch backend times (`torch_unit`: conv + fused followers, eval mode), moved with its
input to the GPU and run under `inference_mode`. Host timers would time the launch, not the kernels: a CUDA event
is recorded before and after each call, and the call counts as done when its end event has completed, so every
repeat starts on an idle GPU, as one latency-bound request does, and includes the launch cost it pays.

cuDNN's benchmark mode (on by default, recorded in the table and its fingerprint) tries the convolution
algorithms for each new shape on its first call and keeps the fastest; the warm-up calls absorb that search. The
batch a table is measured at is in every layer spec it holds (GPU latency is a staircase in batch and channels,
so a table prices one batch only).
"""

from __future__ import annotations

import copy
import gc
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
from torch import nn

from hwmodel.lut.backends import Timer, _TimingBackend, torch_threads, torch_unit
from hwmodel.lut.fingerprint import CUDA_BACKEND, require_cuda
from hwmodel.lut.timing import Measurement
from hwmodel.spec import LayerSpec


class TimingEvent(Protocol):
    """What the timer needs of a `torch.cuda.Event(enable_timing=True)` (a test passes a fake)."""

    def record(self) -> None: ...

    def synchronize(self) -> None: ...

    def elapsed_time(self, end_event: TimingEvent) -> float: ...


def cuda_event() -> TimingEvent:
    """A CUDA event that records a timestamp."""
    event: TimingEvent = torch.cuda.Event(enable_timing=True)  # type: ignore[assignment]
    return event


def summarize(samples: list[float]) -> Measurement:
    """Median, interquartile range and minimum of per-call times (ms), as `time_callable` reports them."""
    if len(samples) >= 2:
        quartiles = statistics.quantiles(samples, n=4)
        iqr = quartiles[2] - quartiles[0]
    else:
        iqr = 0.0
    return Measurement(statistics.median(samples), iqr, min(samples), len(samples))


def time_with_events(
    run: Callable[[], object],
    warmup: int,
    repeats: int,
    event: Callable[[], TimingEvent] | None = None,
    synchronize: Callable[[], None] | None = None,
) -> Measurement:
    """Call `run` `warmup` times untimed, wait for the GPU, then time `repeats` calls between event pairs.

    Each end event is waited for before the next call: calls do not overlap in the GPU's queue, so each sample
    is one call's latency rather than a share of a pipelined stream. Events are created before timing, and the
    garbage collector is paused, so neither lands inside a sample. `event` and `synchronize` default to CUDA's.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    event = event or cuda_event
    for _ in range(warmup):
        run()
    (synchronize or torch.cuda.synchronize)()
    pairs = [(event(), event()) for _ in range(repeats)]
    collecting = gc.isenabled()
    gc.disable()
    try:
        for start, end in pairs:
            start.record()
            run()
            end.record()
            end.synchronize()
    finally:
        if collecting:
            gc.enable()
    return summarize([start.elapsed_time(end) for start, end in pairs])


@contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """Run with cuDNN's benchmark mode set to `enabled`, then restore the caller's setting."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class TorchCudaBackend(_TimingBackend):
    """PyTorch eager on GPU `device_index`, CUDA-event timing, cuDNN benchmark mode as asked.

    Refuses to be created without a CUDA GPU, so a build, a resume or an on-demand measurement fails at once
    with a fix instead of after loading the model.
    """

    name = CUDA_BACKEND

    def __init__(
        self,
        threads: int = 1,
        warmup: int = 10,
        repeats: int = 30,
        *,
        cudnn_benchmark: bool = True,
        device_index: int = 0,
    ) -> None:
        require_cuda(device_index)
        self.threads, self.warmup, self.repeats = threads, warmup, repeats
        self.cudnn_benchmark = cudnn_benchmark
        self.device = torch.device("cuda", device_index)

    def _timer(self, module: nn.Module, example: torch.Tensor) -> Timer:
        module = module.to(self.device)
        example = example.to(self.device)
        # With benchmark mode on, the first call of a shape runs cuDNN's algorithm search: never time it.
        warmup = max(self.warmup, 1) if self.cudnn_benchmark else self.warmup

        def timer(repeats: int) -> Measurement:
            with (
                torch_threads(self.threads),
                cudnn_benchmark(self.cudnn_benchmark),
                torch.cuda.device(self.device),
                torch.inference_mode(),
            ):
                return time_with_events(lambda: module(example), warmup, repeats)

        return timer

    def layer_timer(self, spec: LayerSpec) -> Timer:
        return self._timer(*torch_unit(spec))

    def network_timer(self, model: nn.Module, input_shape: tuple[int, ...]) -> Timer:
        """Times a copy of `model` (eval mode, on the GPU) on one random input of `input_shape`."""
        return self._timer(copy.deepcopy(model).eval(), torch.randn(*input_shape))
