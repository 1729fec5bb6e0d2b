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
from amc.problem import Budget, JointResult, PruningProblem, Result, Task
from amc.problem.scoring import SearchValScorer
from amc.pruning import LayerDensities, Strategy, prune_network
from amc.quantize import LayerBits
from amc.report.plots import plot_keep_ratios, plot_keep_ratios_side_by_side, plot_search_progress
from amc.report.sparsity import sparsity_table, sparsity_totals
from amc.schedule import Schedule, summarize
from amc.search.candidates import Candidate, top_candidates
from amc.search.rerank import Reranking, rerank
from amc.search.run_folder import BEST_FILES, RunFolder
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
    what is timed, so channels are ranked by plain L1. Bit-widths do not change it: this CPU runs it in float."""
    if isinstance(result, JointResult):
        result = result.strategy
    if isinstance(result, LayerBits):
        return copy.deepcopy(problem.model)
    if isinstance(result, Strategy):
        return prune_network(problem.model, problem.table, result.kept_channels(problem.table)).model
    return prune_network(problem.model, problem.table, densities=result.densities, pattern=result.pattern).model


def finish_search(task: Task, folder: RunFolder, wall_s: float, log: Callable[[str], None] = print) -> SearchResult:
    """Measure dense and best on this machine, write summary.json and plots, print the dense-vs-best table."""
    if folder.best_result is None or folder.best_row is None:
        raise UserError(
            f"the search in {folder.path} finished without scoring any strategy.",
            fix="give it at least one episode (search.episodes).",
        )
    problem = task.problem
    ranking, check = _choose(task, folder, log)
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
    if ranking is not None:
        summary["rerank"] = ranking.to_dict()
        summary["best_accuracy_whole_split"] = ranking.candidates[ranking.chosen].accuracy
    if check is not None:
        summary["budget_check"] = check.to_dict()
    plots = folder.path / "plots"
    if isinstance(best, LayerDensities):
        sparsity = summarize(Schedule(densities=best), problem.table, problem.model)
        summary.update(sparsity_totals(sparsity))
        atomic_write_text(folder.path / "sparsity.md", sparsity_table(sparsity) + "\n")
        plot_keep_ratios_side_by_side({"best": best.densities}, plots / "best_densities.png", "weight density")
    elif isinstance(best, (LayerBits, JointResult)):
        bits = best if isinstance(best, LayerBits) else best.bits
        if isinstance(best, JointResult):
            plot_keep_ratios(best.strategy, plots / "best_keep_ratios.png")
        plot_bits(bits, plots / "best_bits.png")
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
    if isinstance(best, (LayerBits, JointResult)):
        log(
            "measured latency is of the float network (thinned, for joint): this CPU does not run mixed precision; "
            "the cost model prices the bit-widths."
        )
    return result


def plot_bits(bits: LayerBits, path: Path) -> None:
    """Per-layer weight and activation bits of a result, as shares of 8 bits."""
    shares = {kind: {name: value / 8 for name, value in per_layer.items()}
              for kind, per_layer in (("weights", bits.weights), ("activations", bits.activations))}  # fmt: skip
    plot_keep_ratios_side_by_side(shares, path, "bits / 8")


def _choose(
    task: Task, folder: RunFolder, log: Callable[[str], None]
) -> tuple[Reranking | None, BudgetVerification | None]:
    """Re-rank the best candidates on the whole search-val split, then re-measure them where the budget is a
    latency measured here; the folder's best becomes the first candidate (re-ranked) that meets the budget."""
    problem, search = task.problem, task.config.search
    reranks = (
        search.rerank_top > 0 and task.data is not None and isinstance(problem.scorer, SearchValScorer)
        and search.method != "netadapt" and problem.rows_rebuild
    )  # fmt: skip
    verifies = search.verify_top > 0 and isinstance(folder.best_result, Strategy) and measured_budget_applies(problem)
    if not (reranks or verifies):
        return None, None
    candidates = top_candidates(folder, problem, max(search.rerank_top * reranks, search.verify_top * verifies))
    ranking = None
    if reranks:
        assert task.data is not None and isinstance(problem.scorer, SearchValScorer)
        scorer = problem.scorer.on_whole(task.data.search_val, task.config.data.batch_size)
        ranking = rerank(problem, candidates[: search.rerank_top], scorer, scorer.images)
        log(ranking.verdict())
        if ranking.chosen:
            _replace_best(folder, candidates[ranking.chosen], "best_by_search_score_")
        candidates = [candidates[index] for index in ranking.order] + candidates[search.rerank_top :]
    check = None
    if verifies:
        check, replacement = verify_budget(problem, candidates[: search.verify_top], task.input_size)
        if replacement is not None:
            _replace_best(folder, replacement, BY_COST_MODEL_FILE.removesuffix("strategy.json"))
        log(check.verdict())
    return ranking, check


def _replace_best(folder: RunFolder, candidate: Candidate, kept_as: str) -> None:
    """Make `candidate` the folder's result; the result it replaces is kept as `kept_as` + its usual name's tail."""
    assert folder.best_result is not None
    replaced = folder.best_result
    folder.best_result.save(folder.path / (kept_as + BEST_FILES[type(replaced)].removeprefix("best_")))
    folder.best_row, result, _ = candidate
    folder.save_best(result)


def _plain_accuracy(problem: PruningProblem, model: nn.Module) -> float:
    """Search-val accuracy of the unpruned model, without BN re-estimation (its statistics are its own)."""
    scorer = copy.copy(problem.scorer)
    scorer.adaptive_bn = False
    return float(scorer(model))
