"""The search's budget checked on what is deployed: the exported network timed on the LUT's own runtime.

A LUT predicts a network's latency from its layers; the search clips strategies against that prediction. What a
user ships is the exported file, and it runs as one graph (fusions, memory reuse, per-call overhead), so the
prediction can be off. Here the deployed network is timed on the runtime, thread count and batch the LUT was
measured with, interleaved with the dense network so a slow spell of the machine favours neither, and compared
with the budget. ONNX Runtime and OpenVINO time the ONNX file itself; other runtimes (PyTorch eager, ...) time
the thinned module, which is what they deploy. A budget in another metric (MACs, params, modelled energy or
latency) holds by construction of the cost model: there is nothing to measure.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from amc.config import MEASURED_TOLERANCE
from amc.deliver.sources import check_tolerance
from amc.problem import Budget
from hwmodel import CostModel
from hwmodel.lut import LutCostModel
from hwmodel.lut.timing import Measurement, interleaved

ROUNDS = 3
"""Interleaved passes of dense and pruned (see `hwmodel.lut.timing.interleaved`)."""

Timer = Callable[[int], Measurement]


@dataclass(frozen=True)
class BudgetCheck:
    """The deployed network's measured latency against the search's latency budget (ms)."""

    measured_ms: float
    predicted_ms: float
    """The LUT's prediction for the same strategy: the cost model's network cost."""
    budget_ms: float
    runtime: str
    threads: int
    batch: int
    tolerance: float
    """Share of the budget a measurement may exceed it by and still meet it (0.02: 2%)."""
    meets: bool
    dense_ms: float | None = None
    """The dense network, timed interleaved with the pruned one (None when the numbers were given)."""
    timed: str = ""
    """What was timed: the ONNX file's path, or "module" for a runtime that runs the thinned module."""
    note: str = ""
    kind: str = "measured"

    @property
    def over(self) -> float:
        """Measured latency above the budget, as a share of it (negative: under)."""
        return self.measured_ms / self.budget_ms - 1.0

    def line(self) -> str:
        """The verdict in one line, as `amc evaluate` prints it and evaluation.md records it."""
        where = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        if self.batch != 1:
            where = f"batch {self.batch}, {where}"
        head = (
            f"budget check: measured {_ms(self.measured_ms)} ms on {self.runtime} ({where}) vs budget "
            f"{_ms(self.budget_ms)} ms (LUT predicted {_ms(self.predicted_ms)} ms): "
        )
        tolerance = f"tolerance {100 * self.tolerance:g}%"
        if not self.meets:
            verdict = f"MISSES by {_pct(self.over)} ({tolerance})"
        elif self.over > 0:
            verdict = f"meets it within tolerance ({_pct(self.over)} over, {tolerance})"
        else:
            verdict = f"meets it ({_pct(-self.over)} under)"
        return head + verdict + (f"; {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelledBudget:
    """A budget the cost model alone decides (MACs, params, modelled energy or latency): nothing to measure."""

    metric: str
    unit: str
    budget: float
    cost: float
    cost_model: str
    meets: bool
    kind: str = "modelled"
    reason: str = "nothing to measure (not a measured-latency LUT)"
    """Why nothing was measured here."""

    def line(self) -> str:
        met = "met" if self.meets else "NOT met"
        return (
            f"budget check: the {self.metric} budget {self.budget:.4g} {self.unit} is {met} by the cost model "
            f"({self.cost_model}: {self.cost:.4g} {self.unit}); {self.reason}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Verdict = BudgetCheck | ModelledBudget


def _ms(value: float) -> str:
    """Three decimals, or three significant digits below 0.01 ms (where three decimals would round to zero)."""
    return f"{value:.3f}" if value >= 0.01 else f"{value:.3g}"


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def verdict_from_dict(data: dict[str, Any] | None) -> Verdict | None:
    """A check as evaluation.json holds it (None for files written before checks were recorded)."""
    if not data:
        return None
    fields = {key: value for key, value in data.items() if key != "kind"}
    return ModelledBudget(**fields) if data.get("kind") == "modelled" else BudgetCheck(**fields)


def measured_check(
    measured_ms: float,
    predicted_ms: float,
    budget_ms: float,
    runtime: str,
    threads: int,
    batch: int,
    tolerance: float = MEASURED_TOLERANCE,
    dense_ms: float | None = None,
    timed: str = "",
    note: str = "",
) -> BudgetCheck:
    """The verdict on given numbers: met when the measurement is at most budget x (1 + tolerance)."""
    check_tolerance(tolerance)
    meets = measured_ms <= budget_ms * (1.0 + tolerance)
    return BudgetCheck(
        measured_ms, predicted_ms, budget_ms, runtime, threads, batch, tolerance, meets, dense_ms, timed, note
    )


def measured_lut(cost_model: CostModel) -> LutCostModel | None:
    """The measured LUT the cost model is (bound or not), or None: a `sparse:` wrapper prices hardware that skips
    zeros, which a CPU runtime does not, so its figure is not one to measure here."""
    return cost_model if isinstance(cost_model, LutCostModel) else None


def lut_runtime(cost_model: CostModel) -> tuple[str, int] | None:
    """(runtime, threads) the cost model's LUT was measured with, or None when it is not a measured LUT."""
    lut = measured_lut(cost_model)
    return (lut.table.backend, int(lut.table.settings["threads"])) if lut else None


def time_pair(
    runtime: str,
    threads: int,
    dense: nn.Module,
    pruned: nn.Module,
    input_shape: tuple[int, ...],
    onnx_file: Path | None = None,
    warmup: int = 10,
    repeats: int = 30,
    options: Mapping[str, Any] | None = None,
) -> tuple[float, float, str]:
    """(dense ms, pruned ms, what was timed) on `runtime` (created with `options`, as a LUT records them),
    interleaved. A runtime that reads ONNX times `onnx_file` (exported to a temporary file when there is none)
    against the dense network exported the same way; any other runtime times the modules."""
    from hwmodel.lut.backends import create_backend

    backend = create_backend(runtime, threads=threads, warmup=warmup, repeats=repeats, **(options or {}))
    file_timer = getattr(backend, "file_timer", None)
    if file_timer is None:
        timers = [backend.network_timer(model, input_shape) for model in (dense, pruned)]
        return (*_medians(interleaved(timers, repeats, ROUNDS)), "module")
    with tempfile.TemporaryDirectory(prefix="amc-deployed-") as folder:
        dense_file = _onnx_of(dense, Path(folder) / "dense.onnx", input_shape)
        pruned_file = onnx_file or _onnx_of(pruned, Path(folder) / "pruned.onnx", input_shape)
        timers = [file_timer(dense_file, input_shape), file_timer(pruned_file, input_shape)]
        timed = str(onnx_file) if onnx_file else "a temporary ONNX export (none was written)"
        return (*_medians(interleaved(timers, repeats, ROUNDS)), timed)


def _medians(measurements: list[Measurement]) -> tuple[float, float]:
    return measurements[0].median_ms, measurements[1].median_ms


def _onnx_of(model: nn.Module, path: Path, input_shape: tuple[int, ...]) -> Path:
    """`model` exported as `amc.export` exports a deployed network (same exporter, same dynamic batch)."""
    from amc.pruning import remove_masks_
    from amc.pruning.export import export_onnx

    size = (int(input_shape[1]), int(input_shape[2]), int(input_shape[3]))
    return export_onnx(remove_masks_(copy.deepcopy(model)), path, size).path


def check_budget(
    cost_model: CostModel,
    budget: Budget,
    cost: float,
    dense: nn.Module,
    pruned: nn.Module,
    input_size: tuple[int, int, int],
    onnx_file: Path | None = None,
    tolerance: float = MEASURED_TOLERANCE,
    repeats: int = 30,
) -> Verdict:
    """The verdict for the strategy priced at `cost` by `cost_model`: measured on the LUT's runtime, device,
    threads and batch when the budget is a measured latency, else the cost model's own."""
    check_tolerance(tolerance)
    lut = measured_lut(cost_model)
    meets = cost <= budget.value * (1 + 1e-9)
    if lut is None or budget.metric != "latency":
        return ModelledBudget(budget.metric, budget.unit, budget.value, cost, cost_model.name, meets)
    if lut.foreign:  # timings here say nothing about the device the LUT prices
        return ModelledBudget(
            budget.metric, budget.unit, budget.value, cost, cost_model.name, meets,
            reason="not measured here: the LUT was measured on another device; time the exported model.onnx there "
            "(e.g. with the runner of a unit bundle, `amc lut export-units`)",
        )  # fmt: skip
    table = lut.table
    threads, batch = int(table.settings["threads"]), table.batch
    dense_ms, pruned_ms, timed = time_pair(
        table.backend, threads, dense, pruned, (batch, *input_size), onnx_file,
        warmup=int(table.settings["warmup"]), repeats=repeats, options=table.backend_options(),
    )  # fmt: skip
    # An INT8 table's options carry its precision: its backend quantizes a float file before timing it.
    return measured_check(pruned_ms, cost, budget.value, table.runtime, threads, batch, tolerance, dense_ms, timed)
