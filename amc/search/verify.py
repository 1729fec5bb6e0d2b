"""The budget checked on the device: a search's best candidates re-measured end to end, with a fallback.

A measured LUT prices a network from its layers, and where searches land (the thin end of the space, where fixed
per-op costs weigh most) its prediction can miss. So when the budget is a latency priced by a measured LUT, the
best few candidates within the budget by the LUT (re-ranked, or highest reward first) are timed as whole
networks on the LUT's own runtime, interleaved with the dense network. The budget is rescaled by the dense
network's measured over predicted latency, so the machine being faster or slower now than when the LUT was
measured is not taken for a miss; the first candidate in that order that meets the rescaled budget is the
search's result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from amc.config import MEASURED_TOLERANCE
from amc.problem import PruningProblem
from amc.pruning import prune_network
from amc.search.candidates import Candidate
from hwmodel.lut import LutCostModel

BY_COST_MODEL_FILE = "best_by_cost_model_strategy.json"
"""Where the cost model's best is kept when a measured check replaced it."""


@dataclass(frozen=True)
class MeasuredCandidate:
    episode: int
    accuracy: float
    reward: float
    predicted: float
    """Cost by the LUT (ms), the figure the search compared with the budget."""
    measured_ms: float
    meets: bool


@dataclass(frozen=True)
class BudgetVerification:
    """What re-measuring the candidates found; `chosen` indexes `candidates` (None: none meets the budget)."""

    backend: str
    budget_ms: float
    """The budget as the search saw it (by the LUT)."""
    dense_predicted_ms: float
    dense_measured_ms: float
    measured_budget_ms: float
    """The budget at the machine's speed now: budget x dense measured / dense predicted."""
    tolerance: float
    candidates: tuple[MeasuredCandidate, ...]
    chosen: int | None

    @property
    def best_meets(self) -> bool:
        return bool(self.candidates) and self.candidates[0].meets

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def verdict(self) -> str:
        """One line: whether the cost model's best meets the budget when measured, and what the search returns."""
        best = self.candidates[0]
        over = 100 * (best.measured_ms / self.measured_budget_ms - 1)
        head = (
            f"budget check on {self.backend}: the best strategy (episode {best.episode}) measures "
            f"{best.measured_ms:.3f} ms against a budget of {self.measured_budget_ms:.3f} ms at this machine's "
            f"speed now ({self.budget_ms:.3f} ms by the LUT; dense {self.dense_measured_ms:.3f} ms measured, "
            f"{self.dense_predicted_ms:.3f} ms predicted)"
        )
        if best.meets:
            return f"{head}: meets it ({over:+.1f}%)."
        if self.chosen is None:
            return (
                f"{head}: MISSES it by {over:.1f}%, and so do the other {len(self.candidates) - 1} candidates "
                "measured; the result is kept, but it is over the budget on this device. Rebuild the LUT on a quiet "
                "machine (`amc lut build`, then `amc lut validate` to see its error per budget band), or lower "
                "the budget."
            )
        fallback = self.candidates[self.chosen]
        return (
            f"{head}: MISSES it by {over:.1f}%. Falling back to episode {fallback.episode}, the best candidate that "
            f"meets it when measured ({fallback.measured_ms:.3f} ms, search-val accuracy "
            f"{100 * fallback.accuracy:.2f}% vs {100 * best.accuracy:.2f}%); the cost model's best is kept as "
            f"{BY_COST_MODEL_FILE}."
        )


def measured_budget_applies(problem: PruningProblem) -> bool:
    """Whether the budget is a latency a measured LUT priced on a runtime this machine can run."""
    model = problem.cost_model
    return isinstance(model, LutCostModel) and problem.budget.metric == "latency" and not model.foreign


def verify_budget(
    problem: PruningProblem, candidates: list[Candidate], input_size: tuple[int, int, int]
) -> tuple[BudgetVerification, Candidate | None]:
    """Measure the dense network and the candidates (the search's result first) together on the LUT's backend (an
    INT8 LUT's backend times them as INT8 graphs, as its units were timed).

    Returns the verification and the candidate the search should return instead of its result (None: keep it).
    """
    lut = problem.cost_model
    assert isinstance(lut, LutCostModel)
    networks: list[nn.Module] = [problem.model] + [
        prune_network(problem.model, problem.table, result.kept_channels(problem.table)).model  # type: ignore[union-attr]
        for _, result, _ in candidates
    ]
    times = [m.median_ms for m in lut.backend.measure_networks(networks, (1, *input_size))]
    dense_ms, measured = times[0], times[1:]
    budget = problem.budget
    measured_budget = budget.value * dense_ms / budget.dense_cost
    limit = measured_budget * (1 + MEASURED_TOLERANCE)
    rows = tuple(
        MeasuredCandidate(row.episode, row.accuracy, row.reward, row.cost, ms, ms <= limit)
        for (row, _, _), ms in zip(candidates, measured)
    )
    chosen = next((index for index, row in enumerate(rows) if row.meets), None)
    verification = BudgetVerification(
        f"{lut.table.runtime}, {lut.table.settings['threads']} thread(s)", budget.value, budget.dense_cost, dense_ms,
        measured_budget, MEASURED_TOLERANCE, rows, chosen,
    )  # fmt: skip
    return verification, candidates[chosen] if chosen not in (None, 0) else None
