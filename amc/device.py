"""Where networks run: `experiment.device` (cpu, cuda, cuda:N, auto) and `experiment.amp`, checked before any work.

Every step that runs a network (training, fine-tuning, BN re-estimation, least-squares refit, scoring) takes its
device from the model it is given, so a caller moves the model (and the data it holds as tensors) once and the rest
follows. On the CPU nothing changes: `.to(cpu)` of a CPU tensor is the tensor itself and autocast stays off, so CPU
results are bit-identical to a run that never named a device. `--amp` is bfloat16 autocast on CUDA (no loss scaling
to checkpoint, unlike float16); on the CPU it is refused, since bfloat16 there is slower on most CPUs and changes
results that CPU runs promise to reproduce.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from amc.config import DEVICE_PATTERN, ExperimentConfig
from amc.errors import UserError

CUDA_FIX = "use --device cpu (experiment.device: cpu), or install a CUDA build of torch and check the GPU driver"


def resolve_device(name: str) -> torch.device:
    """The torch device `experiment.device` names ("auto": the first GPU if torch sees one, else the CPU); a GPU
    that torch does not see is a UserError now, not a CUDA error after the data has loaded."""
    if name == "cpu":
        return torch.device("cpu")
    if not DEVICE_PATTERN.fullmatch(name):
        raise UserError(f"device {name!r} is not cpu, cuda, cuda:N or auto.", fix="name one of those.")
    available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if available else torch.device("cpu")
    index = int(name.partition(":")[2] or -1)
    count = torch.cuda.device_count() if available else 0
    if count == 0:
        raise UserError(
            f"experiment.device is {name!r}, but this torch ({torch.__version__}) sees no CUDA device "
            f"(torch.cuda.is_available() is False).",
            fix=f"{CUDA_FIX} (nvidia-smi should list the GPU).",
        )
    if index >= count:
        raise UserError(
            f"experiment.device is {name!r}, but torch sees {count} CUDA device(s): cuda:0 to cuda:{count - 1}.",
            fix=f"pick one of those, or {CUDA_FIX}.",
        )
    return torch.device("cuda", torch.cuda.current_device() if index < 0 else index)


def check_compute(config: ExperimentConfig) -> ExperimentConfig:
    """`config` with experiment.device resolved (cuda -> cuda:0, auto -> what it found), as a run folder records
    it; raises UserError for a device torch cannot use and for settings that cannot go with it."""
    device = resolve_device(config.experiment.device)
    if config.experiment.amp and device.type != "cuda":
        raise UserError(
            f"experiment.amp is true, but the device is {device} (experiment.device: {config.experiment.device}); "
            "mixed precision is bfloat16 autocast on CUDA only, so that CPU results stay exactly reproducible.",
            fix="drop --amp (experiment.amp: false), or run on a GPU with --device cuda.",
        )
    if config.experiment.amp and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise UserError(
            f"experiment.amp is true, but {torch.cuda.get_device_name(device)} has no native bfloat16.",
            fix="drop --amp (experiment.amp: false): this GPU would only emulate it.",
        )
    search = config.search
    if device.type != "cpu" and (search.workers > 1 or search.executor == "ray"):
        raise UserError(
            f"experiment.device is {device}, but search.workers={search.workers} / search.executor={search.executor} "
            "score candidates in CPU worker processes; several processes sharing one GPU are slower than one.",
            fix="set search.workers=1 and search.executor=local with a GPU, or use --device cpu for parallel workers.",
        )
    return replace(config, experiment=replace(config.experiment, device=str(device)))


def module_device(model: nn.Module) -> torch.device:
    """The device of a model's weights (the CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def to_device(model: nn.Module, device: torch.device, channels_last: bool = False) -> nn.Module:
    """Move `model` in place. On a GPU its 4-d weights become channels-last only when asked (faster convolutions
    on tensor cores with --amp, slower on some older GPUs); a CPU model keeps the layout it has (amc.models.layout
    makes CPU models channels-last)."""
    if device.type == "cpu":
        return model.to(device)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return model.to(device).to(memory_format=layout)


def autocast(device: torch.device, amp: bool) -> AbstractContextManager[Any]:
    """bfloat16 autocast for a forward pass with --amp (on CUDA; check_compute refuses it elsewhere), else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()
