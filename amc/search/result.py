"""What every search ends with: dense vs best (cost, measured latency, search-val accuracy), saved and shown."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from amc.errors import UserError
from amc.io import atomic_write_text
from amc.pruning import LayerDensities, Strategy, apply_masks_, magnitude_masks, remove_masks_, thin
from amc.report.plots import plot_keep_ratios, plot_keep_ratios_side_by_side, plot_search_progress
from amc.report.tables import markdown_table
from amc.schedule import Schedule, summarize
from amc.schedule.summary import ScheduleSummary
from amc.search.accounting import Budget
from amc.search.run_folder import BestResult, RunFolder
from amc.search.task import SearchTask
from hwmodel.lut import LutCostModel
from hwmodel.lut.backends import TorchBackend

LATENCY_THREADS = 1


@dataclass(frozen=True)
class SearchResult:
    run_dir: Path
    strategy: BestResult
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


def measured_latencies_ms(
    cost_model: object, models: list[torch.nn.Module], input_size: tuple[int, int, int]
) -> list[float]:
    """End-to-end latencies on this machine, timed side by side: on the LUT's own backend and threads when the
    budget is a measured LUT (so cost and measurement are comparable), else PyTorch eager on one thread."""
    backend = cost_model.backend if isinstance(cost_model, LutCostModel) else TorchBackend(LATENCY_THREADS)
    return [m.median_ms for m in backend.measure_networks(models, (1, *input_size))]


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
    best_model = pruned_network(task, strategy)
    dense_model = copy.deepcopy(task.model)
    dense_accuracy = _plain_accuracy(task, dense_model)
    dense_ms, best_ms = measured_latencies_ms(task.cost_model, [dense_model, best_model], task.input_size)
    result = SearchResult(
        folder.path, strategy, budget, dense_accuracy, folder.best_row.accuracy, folder.best_row.cost,
        dense_ms, best_ms, folder.rows_written, wall_s,
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
    plots = folder.path / "plots"
    if isinstance(strategy, LayerDensities):
        sparsity = summarize(Schedule(densities=strategy), task.table, task.model)
        summary.update(sparsity_totals(sparsity))
        atomic_write_text(folder.path / "sparsity.md", sparsity_table(sparsity) + "\n")
        plot_keep_ratios_side_by_side({"best": strategy.densities}, plots / "best_densities.png", "weight density")
    else:
        plot_keep_ratios(strategy, plots / "best_keep_ratios.png")
    folder.write_summary(summary)
    plot_search_progress(folder.read_rows(), plots / "search_progress.png", budget)
    log(result.table())
    if isinstance(strategy, LayerDensities):
        log(
            "measured latency is of the masked dense-shaped network: this CPU does not skip zeros; the sparse cost "
            "model's simulated speed-up is dense cost / best cost. Per-layer reductions: "
            f"{folder.path / 'sparsity.md'}"
        )
    return result


def pruned_network(task: SearchTask, strategy: BestResult) -> torch.nn.Module:
    """The best variant as a plain network: channels removed, or the smallest weights zeroed (element-wise)."""
    if isinstance(strategy, Strategy):
        return thin(task.model, task.table, strategy.kept_channels(task.table))
    model = copy.deepcopy(task.model)
    sparsity = {name: 1.0 - density for name, density in strategy.densities.items()}
    return remove_masks_(apply_masks_(model, magnitude_masks(model, sparsity)))


def sparsity_totals(summary: ScheduleSummary) -> dict[str, float]:
    """Whole-network figures of an element-wise result: what a zero-skipping accelerator computes and stores."""
    return {
        "dense_macs": summary.dense_macs,
        "ideal_macs": summary.ideal_macs,
        "compute_reduction": summary.dense_macs / summary.ideal_macs,
        "dense_params": summary.dense_params,
        "nonzero_params": summary.ideal_params,
        "param_reduction": summary.dense_params / summary.ideal_params,
    }


def sparsity_table(summary: ScheduleSummary) -> str:
    """Per layer, compute reduction beside parameter reduction (they differ: a 3x3 layer at 8x8 pixels holds many
    weights but few MACs), as DeGirum's pruned-model tables report them."""
    rows = [
        [layer.name, f"{1 - layer.weight_sparsity:.2f}", f"{layer.dense_macs:,}", f"{layer.ideal_macs:,.0f}",
         f"{layer.dense_macs / max(layer.ideal_macs, 1e-9):.2f}x", f"{layer.dense_params:,}",
         f"{layer.ideal_params:,.0f}", f"{layer.dense_params / max(layer.ideal_params, 1e-9):.2f}x"]
        for layer in summary.layers
    ]  # fmt: skip
    totals = sparsity_totals(summary)
    rows.append(["total", "", f"{summary.dense_macs:,}", f"{summary.ideal_macs:,.0f}",
                 f"{totals['compute_reduction']:.2f}x", f"{summary.dense_params:,}", f"{summary.ideal_params:,.0f}",
                 f"{totals['param_reduction']:.2f}x"])  # fmt: skip
    headers = ["layer", "density", "MACs", "ideal MACs", "compute reduction", "params", "non-zero params",
               "param reduction"]  # fmt: skip
    return markdown_table(headers, rows)


def _plain_accuracy(task: SearchTask, model: torch.nn.Module) -> float:
    """Search-val accuracy of the unpruned model, without BN re-estimation (its statistics are its own)."""
    evaluator = copy.copy(task.evaluator)
    evaluator.adaptive_bn = False
    return evaluator(model)
