"""Sensitivity analysis (Distiller style): prune one group at a time, then allot keep ratios by accuracy drop.

The sweep prunes each group alone to each of search.sensitivity.keeps (and to lbound, so the budget stays
reachable), every other group dense, and scores it; the points go to sensitivity.csv as they finish (a killed
sweep resumes where it stopped) and the curves to plots/sensitivity.png. A drop threshold d then gives every
group the smallest keep ratio whose interpolated accuracy is still >= dense - d; d is bisected to the smallest
value that meets the budget, so sensitive groups keep more channels and robust ones fewer. That one strategy
is scored and recorded.
"""

from __future__ import annotations

import copy
import csv
import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from amc.io import atomic_write_text
from amc.problem import ChannelProblem, Task
from amc.report.plots import plot_sensitivity
from amc.search.baselines.common import channel_problem, open_folder, record
from amc.search.parallel import open_executor
from amc.search.result import SearchResult, finish_search

SWEEP_FILE = "sensitivity.csv"
SWEEP_COLUMNS = ("group", "leader", "kept", "keep", "accuracy", "cost")
BISECTION_STEPS = 50

Curve = list[tuple[float, float]]
"""(keep ratio, accuracy) points of one group, keep descending, starting at the dense (1.0, accuracy)."""


@dataclass(frozen=True)
class SweepPoint:
    group: int
    kept: int


def sweep_points(problem: ChannelProblem, keeps: Sequence[float]) -> list[SweepPoint]:
    """Each group at each keep ratio (rounded, clipped to [lbound, rbound], duplicates and dense dropped)."""
    points = []
    for g in problem.order:
        channels = problem.table.groups[g].channels
        wanted = {problem.snap_down(g, min(max(k, 0.0), 1.0)) for k in keeps}
        wanted.add(problem.candidates[g][0])
        points += [SweepPoint(g, count) for count in sorted(wanted, reverse=True) if count < channels]
    return points


def score_point(problem: ChannelProblem, point: SweepPoint) -> float:
    """Worker function: search-val accuracy with only `point.group` pruned."""
    return problem.score({point.group: point.kept}).accuracy


def keep_at_drop(curve: Curve, floor: float) -> float:
    """The smallest keep ratio on the linearly interpolated curve before accuracy first falls below `floor`."""
    previous_keep, previous_acc = curve[0]
    for keep, accuracy in curve[1:]:
        if accuracy < floor:
            if previous_acc <= floor:
                return previous_keep
            return previous_keep - (previous_keep - keep) * (previous_acc - floor) / (previous_acc - accuracy)
        previous_keep, previous_acc = keep, accuracy
    return previous_keep


def allot(problem: ChannelProblem, curves: Mapping[int, Curve], floor: float) -> dict[int, int]:
    """Channel counts for an accuracy floor: each group's keep at the floor, rounded up to an allowed count."""
    kept = {}
    for g, curve in curves.items():
        wanted = problem.snap(g, min(1.0, keep_at_drop(curve, floor)))
        counts = problem.candidates[g]
        kept[g] = min((c for c in counts if c >= wanted), default=counts[-1])
    return kept


def smallest_drop(problem: ChannelProblem, curves: Mapping[int, Curve], dense: float) -> float:
    """The smallest drop threshold whose allotment meets the budget (bisection; cost falls as the drop grows)."""
    low = 0.0
    high = dense - min(accuracy for curve in curves.values() for _, accuracy in curve) + 1e-6
    budget = problem.budget.value
    if problem.cost(allot(problem, curves, dense - low)) <= budget:
        return low
    for _ in range(BISECTION_STEPS):  # at `high` every group is at its lbound count, which meets the budget
        middle = (low + high) / 2
        if problem.cost(allot(problem, curves, dense - middle)) <= budget:
            high = middle
        else:
            low = middle
    return high


def read_sweep(path: Path) -> dict[SweepPoint, dict[str, str]]:
    """Finished points of a sweep (a line cut short by a kill is dropped)."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if all(row.get(column) for column in SWEEP_COLUMNS)]
    return {SweepPoint(int(row["group"]), int(row["kept"])): row for row in rows}


def write_sweep(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, SWEEP_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def sweep_row(problem: ChannelProblem, point: SweepPoint, accuracy: float) -> dict[str, object]:
    group = problem.table.groups[point.group]
    return {
        "group": point.group, "leader": group.leader, "kept": point.kept, "keep": point.kept / group.channels,
        "accuracy": accuracy, "cost": problem.cost({point.group: point.kept}),
    }  # fmt: skip


def run_sweep(task: Task, problem: ChannelProblem, path: Path, progress: bool) -> dict[SweepPoint, float]:
    """Score every sweep point not yet in `path`, appending each as it finishes."""
    done = read_sweep(path)
    points = sweep_points(problem, task.config.search.sensitivity.keeps)
    write_sweep(path, [done[point] for point in points if point in done])
    todo = [point for point in points if point not in done]
    with open_executor(task.config.search, channel_problem, replace(task, data=None), local=problem) as executor:
        results = executor.map_ordered(score_point, todo)
        for point, accuracy in tqdm(zip(todo, results), total=len(todo), desc="sensitivity", disable=not progress):
            with path.open("a", newline="") as handle:
                csv.DictWriter(handle, SWEEP_COLUMNS).writerow(sweep_row(problem, point, accuracy))
    return {point: float(row["accuracy"]) for point, row in read_sweep(path).items()}


def curves_of(problem: ChannelProblem, sweep: Mapping[SweepPoint, float], dense: float) -> dict[int, Curve]:
    curves: dict[int, Curve] = {g: [(1.0, dense)] for g in problem.order}
    for point, accuracy in sorted(sweep.items(), key=lambda item: -item[0].kept):
        curves[point.group].append((problem.ratio(point.group, point.kept), accuracy))
    return curves


def run_sensitivity(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    problem = channel_problem(task)
    folder = open_folder(task, out, resume, keep_rows=0)
    path = out / SWEEP_FILE
    if not resume:
        path.unlink(missing_ok=True)
    sweep = run_sweep(task, problem, path, progress)
    dense = problem.accuracy(copy.deepcopy(problem.model))  # scored like the sweep points (BN re-estimated too)
    curves = curves_of(problem, sweep, dense)
    names = {problem.table.groups[g].leader: curve for g, curve in curves.items()}
    plot_sensitivity(names, dense, out / "plots" / "sensitivity.png")
    drop = smallest_drop(problem, curves, dense)
    log(f"sensitivity: an accuracy-drop threshold of {100 * drop:.2f} pt per group meets the budget")
    record(folder, 1, problem.score(allot(problem, curves, dense - drop)), problem.budget.value)
    return finish_search(task, folder, time.perf_counter() - start, log=log)
