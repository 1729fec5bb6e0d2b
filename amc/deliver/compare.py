"""`amc compare`: search methods side by side on the same budget, from their run folders.

Each run folder gives its summary (budget, cost, measured latency, search-val accuracy, wall time), its best
strategy (keep ratios; MACs and params of the thinned network) and, once `amc evaluate` has run, the fine-tuned
test accuracy. Runs of one method with different seeds are one row of the methods table (mean ± sd) and a row
each of the runs table. Plots: accuracy vs measured latency with the dense model and the Pareto front, per-layer
keep ratios of each method's best run side by side, and each run's sensitivity curves where the method drew them.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from amc.config import ExperimentConfig, load_config
from amc.deliver.evaluate import read_evaluation
from amc.deliver.sources import schedule_source
from amc.errors import UserError
from amc.graph import build_layer_table
from amc.io import atomic_write_text
from amc.models import create_model
from amc.report.plots import ParetoPoint, plot_keep_ratios_side_by_side, plot_pareto
from amc.report.tables import csv_text, markdown_table, mean_spread
from amc.schedule import Schedule, load_schedule, summarize
from amc.training.base_model import load_data

EVALUATE_FOLDER = "evaluate"


@dataclass(frozen=True)
class RunRecord:
    """One run folder, reduced to what the comparison shows."""

    run: str
    method: str
    seed: int
    model: str
    cost_model: str
    unit: str
    budget_ratio: float
    budget: float
    cost: float
    dense_cost: float
    latency_ms: float
    dense_latency_ms: float
    macs: int
    params: int
    dense_macs: int
    dense_params: int
    search_val_top1: float
    dense_search_val_top1: float
    test_top1: float | None
    dense_test_top1: float | None
    search_s: float
    finetune_s: float | None
    finetune_epochs: int | None

    @property
    def speedup(self) -> float:
        return self.dense_latency_ms / self.latency_ms


@dataclass(frozen=True)
class Comparison:
    records: tuple[RunRecord, ...]
    keep_ratios: dict[str, dict[str, float]]
    """Per run: layer -> keep ratio (channels) or weight density (element-wise)."""

    def best_of_each_method(self) -> dict[str, RunRecord]:
        """Per method, the run with the best fine-tuned test accuracy (search-val where not evaluated)."""
        best: dict[str, RunRecord] = {}
        for record in self.records:
            if record.method not in best or _score(record) > _score(best[record.method]):
                best[record.method] = record
        return best


def _score(record: RunRecord) -> float:
    return record.test_top1 if record.test_top1 is not None else record.search_val_top1


def read_runs(runs: Sequence[Path], log: Callable[[str], None] = print) -> Comparison:
    counter = _Counter()
    records, ratios = [], {}
    labels = _labels(runs)
    for run, label in zip(runs, labels):
        record, per_layer = _read_run(Path(run), label, counter)
        records.append(record)
        ratios[label] = per_layer
    for name in ("model", "cost_model", "unit"):
        values = sorted({str(getattr(record, name)) for record in records})
        if len(values) > 1:
            log(f"note: the runs differ in {name} ({', '.join(values)}); they are compared as they are.")
    return Comparison(tuple(records), ratios)


def _labels(runs: Sequence[Path]) -> list[str]:
    """Folder names, or parent/name where names repeat."""
    names = [Path(run).resolve().name for run in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{Path(run).resolve().parent.name}/{Path(run).resolve().name}" for run in runs]


def _read_run(run: Path, label: str, counter: _Counter) -> tuple[RunRecord, dict[str, float]]:
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        raise UserError(
            f"{run} has no summary.json: its search has not finished (or it is not a run folder).",
            fix=f"finish it with `amc search --out {run} --resume`, or leave it out.",
        )
    summary = json.loads(summary_path.read_text())
    config = load_config(run / "config.yaml", check_cost_model=False)  # reads results: its LUT may be gone
    _, schedule_file = schedule_source(run)
    evaluation = read_evaluation(run / EVALUATE_FOLDER)
    if evaluation is not None:
        macs, params, dense_macs, dense_params = (
            evaluation.macs, evaluation.params, evaluation.dense_macs, evaluation.dense_params
        )  # fmt: skip
        schedule, _ = counter.schedule(config, schedule_file)
    else:
        schedule, (macs, params, dense_macs, dense_params) = counter.schedule(config, schedule_file)
    budget = summary["budget"]
    record = RunRecord(
        run=label, method=summary.get("method", config.search.method), seed=config.experiment.seed,
        model=config.model.name, cost_model=summary.get("cost_model", config.cost.model), unit=budget["unit"],
        budget_ratio=budget["value"] / budget["dense_cost"], budget=budget["value"], cost=summary["best_cost"],
        dense_cost=budget["dense_cost"], latency_ms=summary["best_latency_ms"],
        dense_latency_ms=summary["dense_latency_ms"], macs=macs, params=params, dense_macs=dense_macs,
        dense_params=dense_params, search_val_top1=summary["best_accuracy"],
        dense_search_val_top1=summary["dense_accuracy"],
        test_top1=evaluation.test_top1 if evaluation else None,
        dense_test_top1=evaluation.dense_test_top1 if evaluation else None, search_s=summary["wall_s"],
        finetune_s=evaluation.finetune_s if evaluation else None,
        finetune_epochs=evaluation.finetune.epochs if evaluation else None,
    )  # fmt: skip
    if schedule.strategy is not None:
        return record, schedule.strategy.keep_ratios()
    return record, dict(schedule.densities.densities) if schedule.densities else {}


class _Counter:
    """MACs and params of a run's pruned network, from its config's architecture (no weights needed); the
    data set is read once per configuration, for its input size and class count."""

    def __init__(self) -> None:
        self._shapes: dict[tuple, tuple[tuple[int, int, int], int]] = {}

    def schedule(self, config: ExperimentConfig, path: Path) -> tuple[Schedule, tuple[int, int, int, int]]:
        data = config.data
        key = (data.dataset, data.root, data.search_val_size, data.split_seed, data.image_size)
        if key not in self._shapes:
            bundle = load_data(config)
            self._shapes[key] = (bundle.input_size, bundle.num_classes)
        input_size, num_classes = self._shapes[key]
        model = create_model(config.model.name, in_channels=input_size[0], num_classes=num_classes).eval()
        table = build_layer_table(model, input_size, config.model.name)
        schedule = load_schedule(path, table)
        summary = summarize(schedule, table, model)
        return schedule, (summary.dense_macs, summary.dense_params, summary.original_macs, summary.original_params)


# ----------------------------------------------------------------- tables

RUN_COLUMNS = (
    "run", "method", "seed", "budget", "cost", "latency ms", "speed-up", "MACs", "params", "search-val top-1 %",
    "test top-1 % (fine-tuned)", "search s", "fine-tune s",
)  # fmt: skip
METHOD_COLUMNS = (
    "method", "runs", "budget", "cost", "latency ms", "speed-up", "MACs (M)", "params (K)", "search-val top-1 %",
    "test top-1 % (fine-tuned)", "search s",
)  # fmt: skip


def _budget(record: RunRecord) -> str:
    return f"{100 * record.budget_ratio:.0f}% ({record.budget:.4g} {record.unit})"


def runs_table(comparison: Comparison) -> list[list]:
    rows = []
    for r in comparison.records:
        rows.append([
            r.run, r.method, r.seed, _budget(r), f"{r.cost:.4g}", f"{r.latency_ms:.3f}", f"{r.speedup:.2f}x",
            r.macs, r.params, f"{100 * r.search_val_top1:.2f}",
            "" if r.test_top1 is None else f"{100 * r.test_top1:.2f}", f"{r.search_s:.0f}",
            "" if r.finetune_s is None else f"{r.finetune_s:.0f}",
        ])  # fmt: skip
    return rows


def methods_table(comparison: Comparison) -> list[list]:
    """The dense model, then one row per method (mean ± sd over its runs)."""
    records = comparison.records
    dense_tests = [r.dense_test_top1 for r in records if r.dense_test_top1 is not None]
    first = records[0]
    rows: list[list] = [[
        "dense", "", "", f"{first.dense_cost:.4g}", f"{statistics.median(r.dense_latency_ms for r in records):.3f}",
        "1.00x", f"{first.dense_macs / 1e6:.2f}", f"{first.dense_params / 1e3:.1f}",
        mean_spread([first.dense_search_val_top1], 100), mean_spread(dense_tests[:1], 100), "",
    ]]  # fmt: skip
    for method in dict.fromkeys(r.method for r in records):
        group = [r for r in records if r.method == method]
        tests = [r.test_top1 for r in group if r.test_top1 is not None]
        rows.append([
            method, len(group), _budget(group[0]), mean_spread([r.cost for r in group], 1, ".4g"),
            mean_spread([r.latency_ms for r in group], 1, ".3f"), mean_spread([r.speedup for r in group]) + "x",
            mean_spread([r.macs / 1e6 for r in group]), mean_spread([r.params / 1e3 for r in group], 1, ".1f"),
            mean_spread([r.search_val_top1 for r in group], 100), mean_spread(tests, 100),
            mean_spread([r.search_s for r in group], 1, ".0f"),
        ])  # fmt: skip
    return rows


def write_comparison(comparison: Comparison, out: Path, log: Callable[[str], None] = print) -> Path:
    """comparison.md (methods and runs tables), comparison.csv (one row per run, raw numbers) and plots/."""
    out.mkdir(parents=True, exist_ok=True)
    methods = markdown_table(METHOD_COLUMNS, methods_table(comparison))
    runs = markdown_table(RUN_COLUMNS, runs_table(comparison))
    text = f"## Methods\n\n{methods}\n\n## Runs\n\n{runs}\n"
    atomic_write_text(out / "comparison.md", text)
    columns = [f.name for f in fields(RunRecord)] + ["speedup"]
    raw = [[getattr(r, name) for name in columns] for r in comparison.records]
    atomic_write_text(out / "comparison.csv", csv_text(columns, raw))
    _plots(comparison, out / "plots")
    log(methods)
    return out / "comparison.md"


def _plots(comparison: Comparison, plots: Path) -> None:
    records = comparison.records
    tested = all(r.test_top1 is not None and r.dense_test_top1 is not None for r in records)
    if tested:
        points = [ParetoPoint(r.method, r.latency_ms, r.test_top1 or 0.0) for r in records]
        dense_accuracy, ylabel = records[0].dense_test_top1 or 0.0, "test top-1 after fine-tuning (%)"
    else:
        points = [ParetoPoint(r.method, r.latency_ms, r.search_val_top1) for r in records]
        dense_accuracy, ylabel = records[0].dense_search_val_top1, "search-val top-1, not fine-tuned (%)"
    dense = ParetoPoint("dense", statistics.median(r.dense_latency_ms for r in records), dense_accuracy)
    budget_ms = records[0].budget if records[0].unit == "ms" else None
    plot_pareto(points, dense, plots / "pareto.png", ylabel, budget_ms, f"{records[0].model}: accuracy vs latency")
    best = comparison.best_of_each_method()
    ratios = {f"{method} ({record.run})": comparison.keep_ratios[record.run] for method, record in best.items()}
    plot_keep_ratios_side_by_side(ratios, plots / "keep_ratios.png")


def compare_runs(runs: Sequence[Path], out: Path, log: Callable[[str], None] = print) -> Comparison:
    if not runs:
        raise UserError("no run folders given.", fix="pass one or more run folders of `amc search`.")
    comparison = read_runs(runs, log)
    write_comparison(comparison, out, log)
    for run, label in zip(runs, comparison.keep_ratios):
        for curve in sorted((Path(run) / "plots").glob("*sensitivity*.png")):
            shutil.copyfile(curve, out / "plots" / f"{label.replace('/', '_')}_{curve.name}")
    return comparison
