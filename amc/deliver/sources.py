"""What `amc evaluate` starts from and how it times, readable before any heavy import: the CLI resolves the run
folder and its config (and refuses a bad one) before torch and the data load."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amc.config import MEASURED_TOLERANCE
from amc.errors import UserError

BITS_FILE = "best_bits.json"
"""A mixed-precision search's result (`search.granularity: bits | joint`)."""
SCHEDULE_FILES = ("best_strategy.json", "best_densities.json")
"""What a run folder's result is called: channel strategies, or element-wise densities (the mixed run)."""


@dataclass(frozen=True)
class LatencySettings:
    threads: int = 1
    """One thread, as the latency LUTs are measured: stable on a shared machine, and what batch-1 serving uses."""
    batch: int = 64
    """The throughput batch (images per call), measured beside batch 1."""
    repeats: int = 30
    tolerance: float = MEASURED_TOLERANCE
    """Share of a latency budget the deployed network's measurement may exceed it by (--budget-tolerance / 100)."""

    def __post_init__(self) -> None:
        check_tolerance(self.tolerance)
        for name, flag in (("threads", "--latency-threads"), ("batch", "--throughput-batch"), ("repeats", "")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                where = f"{flag} ({name})" if flag else name
                raise UserError(
                    f"latency measurement {where} is {value!r}; it must be a whole number >= 1.",
                    fix=f"use {flag or name} 1 or more (default {getattr(LatencySettings, name)}).",
                )


def check_tolerance(tolerance: float) -> None:
    """A budget tolerance is a share of the budget in [0, 1) (NaN fails the comparison too)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
        raise UserError(
            f"the budget tolerance is {tolerance!r} of the budget; it must be a share in [0, 1).",
            fix=f"use --budget-tolerance PCT with a per cent in [0, 100), e.g. {100 * MEASURED_TOLERANCE:g} (default).",
        )


INT8_MARKERS = ("quantize.json", "model.int8.onnx")
"""What `amc quantize` writes: a folder holding one is an INT8 result, not a float network to prune."""


def refuse_quantized(path: Path, command: str) -> None:
    """An INT8 result of `amc quantize` (its folder, or any .onnx file) given where a float network is wanted is a
    UserError: pruning, fine-tuning or quantizing again start from the float model."""
    path = Path(path)
    marker = next((path / name for name in INT8_MARKERS if path.is_dir() and (path / name).is_file()), None)
    if marker is not None or path.suffix == ".onnx":
        raise UserError(
            f"{marker or path} is an exported (INT8 or ONNX) network; {command} starts from a float PyTorch network.",
            fix="pass the folder or checkpoint it was made from (quantize.json records it as 'source').",
        )


def schedule_source(path: Path) -> tuple[Path | None, Path]:
    """(run folder or None, schedule file) for `amc evaluate RUN_DIR | STRATEGY`."""
    path = Path(path)
    refuse_quantized(path, "amc evaluate")
    if path.is_dir() and (path / BITS_FILE).is_file():
        raise UserError(
            f"{path} holds a mixed-precision result ({BITS_FILE}): its per-layer bit-widths (2-8) run on bit-serial "
            "or bit-flexible hardware, not on this machine's runtimes, so amc evaluate cannot fine-tune or time it.",
            fix=f"see its fake-quantized search-val accuracy in {path / 'summary.json'} and its stored size with "
            f"`amc size {path}`; a joint run's channel part alone evaluates as "
            f"`amc evaluate {path / 'best_strategy.json'}` (float), or with `--int8` (uniform INT8).",
        )
    if path.is_dir() and (path / "stage_1").is_dir() and not (path / "episodes.csv").is_file():
        return _last_stage(path)
    if path.is_dir():
        for name in SCHEDULE_FILES:
            if (path / name).is_file():
                return path, path / name
        raise UserError(
            f"{path} holds no {' or '.join(SCHEDULE_FILES)}.",
            fix="pass a run folder written by `amc search` (after its first episode), or a strategy file.",
        )
    if not path.is_file():
        raise UserError(f"{path} does not exist.", fix="pass a run folder or a strategy / schedule file.")
    run = path.parent if (path.parent / "config.yaml").is_file() else None
    return run, path


def _last_stage(run: Path) -> tuple[Path, Path]:
    """A staged search (`search.stages`): its last stage's folder and strategy, which `stage_input` prunes from the
    stage before's fine-tuned network (the final network; not the base model)."""
    summary = run / "summary.json"
    stages = json.loads(summary.read_text()).get("stages") if summary.is_file() else None
    if not isinstance(stages, int):
        raise UserError(
            f"{run} holds a staged search that has not finished (no {summary.name}).",
            fix=f"finish it with `amc search --config {run / 'config.yaml'} --out {run} --resume`.",
        )
    stage = run / f"stage_{stages}"
    return stage, stage / SCHEDULE_FILES[0]


def stage_input(run: Path) -> Path | None:
    """For stage k > 1 of a staged search, the folder of the network its strategy prunes (stage k-1's fine-tuned
    one); None for any other run folder (its strategy prunes the configured base model)."""
    run = Path(run)
    prefix, _, number = run.name.partition("_")
    if prefix != "stage" or not number.isdigit() or int(number) < 2:
        return None
    source = run.parent / f"stage_{int(number) - 1}" / "finetuned"
    if not (source / "architecture.json").is_file():
        raise UserError(f"{source} (the network stage {number} pruned) is missing.", fix="run the staged search again.")
    return source
