"""The pruning problem every search works on: decisions, budget, cost, clipping, apply and score.

Below both `envs` and `amc.search`: it may import config, data, models, graph, pruning, training (the base
model) and the cost models, never an env or a search method.
"""

from amc.problem.accounting import ChannelAccountant, DensityAccountant, candidate_counts, density_grid
from amc.problem.base import REWARDS, Bounds, PruningProblem, Settings
from amc.problem.bits import BitPair, BitsProblem
from amc.problem.budget import Budget, resolve_budget
from amc.problem.channel import ChannelProblem, PrunedModel
from amc.problem.density import DensityProblem
from amc.problem.factory import PROBLEMS, Task, build_task, problem_from_objects
from amc.problem.joint import JointDecision, JointProblem, JointResult
from amc.problem.outcome import Outcome, Result
from amc.problem.scoring import CallbackScorer, Scorer, SearchValScorer

__all__ = [
    "PROBLEMS",
    "REWARDS",
    "BitPair",
    "BitsProblem",
    "Bounds",
    "Budget",
    "CallbackScorer",
    "ChannelAccountant",
    "ChannelProblem",
    "DensityAccountant",
    "DensityProblem",
    "JointDecision",
    "JointProblem",
    "JointResult",
    "Outcome",
    "PruningProblem",
    "Result",
    "Scorer",
    "SearchValScorer",
    "Settings",
    "Task",
    "PrunedModel",
    "build_task",
    "candidate_counts",
    "density_grid",
    "problem_from_objects",
    "resolve_budget",
]
