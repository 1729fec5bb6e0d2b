"""What every search ends with: dense vs best (cost, measured latency, search-val accuracy), saved and shown."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from amc.costs.measure import backend_description, measured_latencies_ms
from amc.errors import UserError
from amc.io import atomic_write_text
from amc.problem import Budget, PruningProblem, Result, Task
from amc.pruning import LayerDensities, Strategy, prune_network
from amc.report.plots import plot_keep_ratios, plot_keep_ratios_side_by_side, plot_search_progress
from amc.report.sparsity import sparsity_table, sparsity_totals
from amc.schedule import Schedule, summarize
from amc.search.run_folder import RunFolder
from amc.search.verify import BY_COST_MODEL_FILE, BudgetVerification, measured_budget_applies, verify_budget


@dataclass(frozen=True)
class SearchResult:
    run_dir: Path
    best: Result
    """The best strategy (or, element-wise, densities) found within the budget."""
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


def network_of(problem: PruningProblem, result: Result) -> nn.Module:
    """A result as a plain network (channels removed, or the smallest weights zeroed): its architecture is
    what is timed, so channels are ranked by plain L1."""
    if isinstance(result, Strategy):
        return prune_network(problem.model, problem.table, result.kept_channels(problem.table)).model
    return prune_network(problem.model, problem.table, densities=result.densities).model


def finish_search(task: Task, folder: RunFolder, wall_s: float, log: Callable[[str], None] = print) -> SearchResult:
    """Measure dense and best on this machine, write summary.json and plots, print the dense-vs-best table."""
    if folder.best_result is None or folder.best_row is None:
        raise UserError(
            f"the search in {folder.path} finished without scoring any strategy.",
            fix="give it at least one episode (search.episodes).",
        )
    problem = task.problem
    check = _verify(task, folder, log)
    best = folder.best_result
    dense_model = copy.deepcopy(problem.model)
    dense_accuracy = _plain_accuracy(problem, dense_model)
    if check is None:
        dense_ms, best_ms = measured_latencies_ms(
            problem.cost_model, [dense_model, network_of(problem, best)], task.input_size
        )
    else:
        dense_ms = check.dense_measured_ms
        best_ms = check.candidates[check.chosen or 0].measured_ms
    result = SearchResult(
        folder.path, best, problem.budget, dense_accuracy, folder.best_row.accuracy, folder.best_row.cost,
        dense_ms, best_ms, folder.rows_written, wall_s,
    )  # fmt: skip
    summary = {key: value for key, value in asdict(result).items() if key not in ("best", "run_dir")}
    summary.update(
        {
            "method": task.config.search.method,
            "cost_model": problem.cost_model.name,
            "latency_backend": backend_description(problem.cost_model),
            "best_episode": folder.best_row.episode,
        }
    )
    if check is not None:
        summary["budget_check"] = check.to_dict()
    plots = folder.path / "plots"
    if isinstance(best, LayerDensities):
        sparsity = summarize(Schedule(densities=best), problem.table, problem.model)
        summary.update(sparsity_totals(sparsity))
        atomic_write_text(folder.path / "sparsity.md", sparsity_table(sparsity) + "\n")
        plot_keep_ratios_side_by_side({"best": best.densities}, plots / "best_densities.png", "weight density")
    else:
        plot_keep_ratios(best, plots / "best_keep_ratios.png")
    folder.write_summary(summary)
    rows = folder.episode_rows()
    plot_search_progress(
        [row.episode for row in rows], [row.accuracy for row in rows], [row.reward for row in rows],
        plots / "search_progress.png",
    )  # fmt: skip
    log(result.table())
    if isinstance(best, LayerDensities):
        log(
            "measured latency is of the masked dense-shaped network: this CPU does not skip zeros; the sparse cost "
            "model's simulated speed-up is dense cost / best cost. Per-layer reductions: "
            f"{folder.path / 'sparsity.md'}"
        )
    return result


def _verify(task: Task, folder: RunFolder, log: Callable[[str], None]) -> BudgetVerification | None:
    """Re-measure the best candidates where the budget is a latency measured here; fall back if the best misses."""
    problem = task.problem
    top = task.config.search.verify_top
    if not top or not isinstance(folder.best_result, Strategy) or not measured_budget_applies(problem):
        return None
    check, replacement = verify_budget(problem, folder, task.input_size, top)
    if replacement is not None:
        assert folder.best_result is not None
        folder.best_result.save(folder.path / BY_COST_MODEL_FILE)
        folder.best_row, strategy = replacement
        folder.save_best(strategy)
    log(check.verdict())
    return check


def _plain_accuracy(problem: PruningProblem, model: nn.Module) -> float:
    """Search-val accuracy of the unpruned model, without BN re-estimation (its statistics are its own)."""
    scorer = copy.copy(problem.scorer)
    scorer.adaptive_bn = False
    return float(scorer(model))
