"""The thinned-model format for networks `architecture.json` cannot describe: a `torch.export` program.

`architecture.json` rebuilds a zoo model by resizing its conv, linear and BatchNorm layers; a network whose
pruned tensors belong to other modules (ConvNeXt's LayerNorm2d and layer scales, a user's own block) is saved
instead as `model.pt2` (`torch.export.save` of the thinned network in eval mode, batch dimension dynamic) beside
`model.pt` (its state dict, for `amc.load_pruned`) and `model.onnx`. `thinned.json` (versioned) says which format
a folder holds and why. Fixed in a program: the input's channels and H×W, eval-mode behaviour (BatchNorm uses its
running statistics, dropout is off) and the float dtype; only the batch size varies.

`torch.export.load` may unpickle: pickled weights or constants, custom or opaque objects, and the sample inputs
(it retries them with `weights_only=False`). `load_program` opens the archive first and refuses any pickled
payload except sample inputs that `torch.load(weights_only=True)` reads, so loading never runs arbitrary objects.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.errors import UserError
from amc.io import atomic_write_text, json_text

MANIFEST_FILE = "thinned.json"
MANIFEST_TYPE = "amc.ThinnedModel"
MANIFEST_VERSION = 1
PROGRAM_FILE = "model.pt2"
ARCHITECTURE = "architecture.json"
TORCH_EXPORT = "torch.export"
FORMATS = (ARCHITECTURE, TORCH_EXPORT)


@dataclass(frozen=True)
class Manifest:
    """What a thinned folder holds: `format` (architecture.json | torch.export) and why it was chosen."""

    format: str
    reason: str
    model: str
    input_size: tuple[int, int, int] | None
    num_classes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": MANIFEST_TYPE,
            "_version": MANIFEST_VERSION,
            "format": self.format,
            "reason": self.reason,
            "model": self.model,
            "input_size": list(self.input_size) if self.input_size else None,
            "num_classes": self.num_classes,
        }


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / MANIFEST_FILE
    atomic_write_text(path, json_text(manifest.to_dict(), path))
    return path


def read_manifest(folder: str | Path) -> Manifest | None:
    """The folder's manifest; None for folders written before it existed (architecture.json alone)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("_type") != MANIFEST_TYPE or not isinstance(data.get("_version"), int):
        raise UserError(f"{path} is not an amc thinned-model manifest.", fix="pass a folder from `amc prune`.")
    if data["_version"] > MANIFEST_VERSION:
        raise UserError(
            f"{path} has format version {data['_version']}; this amc reads 1..{MANIFEST_VERSION}.", fix="upgrade amc."
        )
    if data.get("format") not in FORMATS:
        raise UserError(f"{path} names format {data.get('format')!r}; amc writes {' or '.join(FORMATS)}.")
    size = data.get("input_size")
    return Manifest(
        data["format"],
        str(data.get("reason", "")),
        str(data.get("model", "")),
        (size[0], size[1], size[2]) if size else None,
        data.get("num_classes"),
    )


def export_program(model: nn.Module, input_size: tuple[int, int, int]) -> torch.export.ExportedProgram:
    """`model` (eval mode, on the CPU) as a torch.export program with a dynamic batch; a network torch.export
    cannot capture (e.g. data-dependent control flow) is a UserError naming the innermost module that failed."""
    example = torch.randn(2, *input_size)
    batch = torch.export.Dim("batch", min=1)
    with _module_stack(model) as stack:
        try:
            return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        except Exception as error:  # torch.export raises many types; each becomes the same clear message
            where = stack[-1] if stack else "the model's own forward"
            first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
            raise UserError(
                f"cannot save this network: architecture.json cannot describe it and torch.export fails in "
                f"{where} ({type(model.get_submodule(where)).__name__ if stack else type(model).__name__}): "
                f"{first[:300]}",
                fix="make that module's forward traceable (no Python branches on tensor values; torch.cond instead), "
                "or prune only zoo layers (conv, linear, BatchNorm).",
            ) from None


def save_program(model: nn.Module, folder: Path, input_size: tuple[int, int, int]) -> Path:
    path = folder / PROGRAM_FILE
    program = export_program(model.eval(), input_size)
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("model.partial.pt2")  # torch.export.save wants the .pt2 suffix
    torch.export.save(program, str(partial))
    partial.replace(path)
    return path


class ExportedNetwork(nn.Module):
    """A loaded program as an ordinary module: `.eval()` / `.train()` only set the flag (the program's graph is
    fixed in eval mode; torch.export's own module refuses both), so every reader can call them."""

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.program(images)  # type: ignore[no-any-return]

    def train(self, mode: bool = True) -> ExportedNetwork:
        self.training = mode
        return self


def load_program(folder: str | Path) -> ExportedNetwork:
    """The network in `folder/model.pt2`, checked to unpickle nothing but plain tensors (see the module notes)."""
    path = Path(folder) / PROGRAM_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist.", fix="pass a folder written by `amc prune --out`.")
    check_no_pickle(path)
    return ExportedNetwork(torch.export.load(str(path)).module()).eval()


def count_macs(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one image through any module (a loaded program has no conv/linear layers for the
    layer table to read): PyTorch's FLOP counter over a forward pass, halved. Attention's fused inference fast
    path is switched off while counting: the counter cannot see inside it, and an exported program (which has no
    fast path) would otherwise count more than the module it came from."""
    from torch.utils.flop_counter import FlopCounterMode

    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, *input_size))
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    return counter.get_total_flops() // 2


def check_no_pickle(path: Path) -> None:
    """Refuse a .pt2 archive holding anything torch.export.load would unpickle beyond weights-only tensors."""
    bad = UserError(
        f"{path} holds pickled objects; amc loads only programs whose weights are raw tensors.",
        fix="re-create it with `amc prune` (amc writes no pickled payloads).",
    )
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UserError(f"{path} is not a torch.export archive.", fix="pass a folder from `amc prune`.") from None
    with archive:
        for name in archive.namelist():
            if "/aotinductor/" in name:
                raise bad
            if name.endswith("_config.json") and ("/data/weights/" in name or "/data/constants/" in name):
                for payload in json.loads(archive.read(name)).get("config", {}).values():
                    if payload.get("use_pickle") or not str(payload.get("path_name", "")).startswith(
                        ("weight_", "tensor_")
                    ):
                        raise bad
            elif name.endswith((".pt", ".pkl")):
                if "/data/sample_inputs/" not in name:
                    raise bad
                try:
                    torch.load(archive.open(name), weights_only=True)
                except Exception:  # anything weights_only refuses would be retried with full unpickling
                    raise bad from None


@contextmanager
def _module_stack(model: nn.Module) -> Iterator[list[str]]:
    """Names of the submodules whose forward is running, innermost last (hooks removed on exit)."""
    stack: list[str] = []
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue
        handles.append(module.register_forward_pre_hook(lambda _m, _a, n=name: stack.append(n)))
        handles.append(module.register_forward_hook(lambda _m, _a, _o: _pop(stack)))
    try:
        yield stack
    finally:
        for handle in handles:
            handle.remove()


def _pop(stack: list[str]) -> None:
    stack.pop()
