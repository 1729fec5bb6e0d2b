"""What every search ends with: dense vs best (cost, measured latency, search-val accuracy), saved and shown."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from amc.errors import UserError
from amc.pruning import Strategy, thin
from amc.pruning.latency import measure_latency
from amc.report.plots import plot_keep_ratios, plot_search_progress
from amc.search.accounting import Budget
from amc.search.run_folder import RunFolder
from amc.search.task import SearchTask
from hwmodel.lut import LutCostModel

LATENCY_THREADS = 1


@dataclass(frozen=True)
class SearchResult:
    run_dir: Path
    strategy: Strategy
    budget: Budget
    dense_accuracy: float
    best_accuracy: float
    best_cost: float
    dense_latency_ms: float
    best_latency_ms: float
    episodes: int
    wall_s: float

    def table(self) -> str:
        unit = self.budget.unit
        dense, best = self.budget.dense_cost, self.best_cost
        rows = [
            ("", f"cost ({unit})", "measured latency", "search-val acc"),
            ("dense", f"{dense:.4g}", f"{self.dense_latency_ms:.3f} ms", f"{100 * self.dense_accuracy:.2f}%"),
            ("best found", f"{best:.4g}", f"{self.best_latency_ms:.3f} ms", f"{100 * self.best_accuracy:.2f}%"),
            (
                "ratio",
                f"{best / dense:.3f}",
                f"{self.best_latency_ms / self.dense_latency_ms:.3f}",
                f"{100 * (self.best_accuracy - self.dense_accuracy):+.2f} pt",
            ),
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
        budget = f"budget {self.budget.value:.4g} {unit} ({100 * self.budget.ratio:.0f}% of dense) by the cost model"
        return "\n".join([budget, *lines])


def measured_latency_ms(cost_model: object, model: torch.nn.Module, input_size: tuple[int, int, int]) -> float:
    """End-to-end latency on this machine: on the LUT's own backend and threads when the budget is a measured LUT
    (so cost and measurement are comparable), else PyTorch eager on one thread."""
    if isinstance(cost_model, LutCostModel):
        return cost_model.backend.measure_network(model, (1, *input_size)).median_ms
    threads = torch.get_num_threads()
    torch.set_num_threads(LATENCY_THREADS)
    try:
        return measure_latency(model, input_size, repeats=30).median_ms
    finally:
        torch.set_num_threads(threads)


def latency_backend(cost_model: object) -> str:
    if isinstance(cost_model, LutCostModel):
        return f"{cost_model.table.backend}, {cost_model.table.settings['threads']} thread(s)"
    return f"torch, {LATENCY_THREADS} thread(s)"


def finish_search(
    task: SearchTask, folder: RunFolder, budget: Budget, wall_s: float, log: Callable[[str], None] = print
) -> SearchResult:
    """Measure dense and best on this machine, write summary.json and plots, print the dense-vs-best table."""
    if folder.best_strategy is None or folder.best_row is None:
        raise UserError(
            f"the search in {folder.path} finished without scoring any strategy.",
            fix="give it at least one episode (search.episodes).",
        )
    strategy = folder.best_strategy
    best_model = thin(task.model, task.table, strategy.kept_channels(task.table))
    dense_model = copy.deepcopy(task.model)
    dense_accuracy = _plain_accuracy(task, dense_model)
    result = SearchResult(
        folder.path, strategy, budget, dense_accuracy, folder.best_row.accuracy, folder.best_row.cost,
        measured_latency_ms(task.cost_model, dense_model, task.bundle.input_size),
        measured_latency_ms(task.cost_model, best_model, task.bundle.input_size),
        folder.rows_written, wall_s,
    )  # fmt: skip
    summary = {key: value for key, value in asdict(result).items() if key not in ("strategy", "run_dir")}
    summary.update(
        {
            "method": task.config.search.method,
            "cost_model": task.cost_model.name,
            "latency_backend": latency_backend(task.cost_model),
            "best_episode": folder.best_row.episode,
        }
    )
    folder.write_summary(summary)
    rows = folder.read_rows()
    plot_search_progress(rows, folder.path / "plots" / "search_progress.png", budget)
    plot_keep_ratios(strategy, folder.path / "plots" / "best_keep_ratios.png")
    log(result.table())
    return result


def _plain_accuracy(task: SearchTask, model: torch.nn.Module) -> float:
    """Search-val accuracy of the unpruned model, without BN re-estimation (its statistics are its own)."""
    evaluator = copy.copy(task.evaluator)
    evaluator.adaptive_bn = False
    return evaluator(model)
