"""A search's best few candidates, rebuilt from its episode log: what re-ranking and the budget check look at.

Every scored variant is a row of episodes.csv with its per-step keep shares; only the best result is kept as a
file. A row's decisions are rebuilt by snapping each share to the nearest allowed value, and kept only when they
price exactly as the row recorded (so a rebuilt candidate is the variant that was scored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from amc.problem import PruningProblem, Result
from amc.search.run_folder import EpisodeRow, RunFolder

Candidate = tuple[EpisodeRow, Result, Mapping[int, float]]
"""A scored row, its result (strategy or densities) and its decisions per unit."""


def row_decisions(problem: PruningProblem, row: EpisodeRow) -> dict[int, float]:
    """The allowed value of each unit nearest the row's recorded keep share."""
    return {
        unit: min(problem.candidates[unit], key=lambda value: abs(problem.ratio(unit, value) - share))
        for unit, share in zip(problem.order, row.keep_ratios)
    }


def top_candidates(folder: RunFolder, problem: PruningProblem, top: int) -> list[Candidate]:
    """The best row and up to `top` - 1 more distinct ones within the budget, most rewarding first (rows whose
    rebuilt decisions do not price as recorded are skipped)."""
    best, best_row = folder.best_result, folder.best_row
    assert best is not None and best_row is not None
    found: list[Candidate] = []
    seen: set[tuple[tuple[int, float], ...]] = set()
    rows = sorted(
        (row for row in folder.episode_rows() if row.cost <= row.budget and len(row.keep_ratios) == len(problem.order)),
        key=lambda row: -row.reward,
    )
    best_decisions = row_decisions(problem, best_row)
    if len(best_row.keep_ratios) == len(problem.order):
        found.append((best_row, best, best_decisions))
        seen.add(tuple(sorted(best_decisions.items())))
    for row in rows:
        if len(found) >= max(top, 1):
            break
        decisions = row_decisions(problem, row)
        key = tuple(sorted(decisions.items()))
        if key in seen or not math.isclose(problem.cost(decisions), row.cost, rel_tol=1e-4):
            continue
        seen.add(key)
        outcome = problem.outcome(decisions, row.cost, row.accuracy, {}, 0.0)  # type: ignore[arg-type]
        found.append((row, outcome.result, decisions))
    return found
