"""One learned policy at every budget: the AMC actor run greedily at several budgets, on its network or another.

A budget-conditioned policy (learned with `agent.budget_range`) observes the budget, so one search serves every
budget in its range; a policy learned at one budget does not see it, and at another budget only the clipping
changes what it does (allowed, with a warning). At each budget the actor plays one greedy episode and optionally
`refine` more with truncated-normal noise around its actions (seeded by experiment.seed and the budget's
position); every episode meets the budget by the cost model (the problem's clipping). The candidates are
re-scored on the whole search-val split, as a search's best few are (amc.search.rerank), and the best is kept:
its strategy JSON and Distiller schedule are written beside pareto.csv. Uniform pruning at the same budget (the
uniform method's bisection), scored the same way, is the reference front. Transfer is the same on another
network's task: the observation is normalised per network, so only its length must match the policy's.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, fields, replace
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from amc.agents import TruncatedNormalActionNoise, load_policy_weights, make_agent, read_policy  # noqa: E402
from amc.config import AgentSection  # noqa: E402
from amc.errors import UserError  # noqa: E402
from amc.io import atomic_write_text  # noqa: E402
from amc.problem import Budget, ChannelProblem, Outcome, Task  # noqa: E402
from amc.problem.scoring import Scorer, SearchValScorer  # noqa: E402
from amc.schedule import save_schedule  # noqa: E402
from amc.search.baselines.uniform import uniform_keep, uniform_kept  # noqa: E402
from amc.search.candidates import Candidate  # noqa: E402
from amc.search.rerank import rerank  # noqa: E402
from amc.search.run_folder import EpisodeRow  # noqa: E402
from envs import ChannelPruningEnv  # noqa: E402

PARETO_DIR = "pareto"


@dataclass(frozen=True)
class ParetoRow:
    """One budget: the policy's chosen strategy and uniform's, each scored on the whole search-val split."""

    budget: float
    """The budget as a share of the dense cost."""
    budget_value: float
    cost: float
    share_of_dense: float
    accuracy: float
    """Search-val accuracy (the whole split where the task has one, else the search's slice)."""
    search_accuracy: float
    """The chosen episode's score on the search's slice."""
    source: str
    """greedy, or refine-<k> for the k-th exploration episode."""
    uniform_cost: float
    uniform_share: float
    uniform_accuracy: float
    strategy: str
    schedule: str


COLUMNS = tuple(field.name for field in fields(ParetoRow))


def parse_budgets(text: str) -> tuple[float, ...]:
    """`0.3,0.4,0.5` as sorted distinct shares of the dense cost, each in (0, 1]."""
    fix = "give shares of the dense cost in (0, 1], comma-separated, e.g. --budgets 0.3,0.4,0.5,0.6,0.7."
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise UserError(f"--budgets {text!r} names no budget.", fix=fix)
    budgets = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise UserError(f"--budgets: {part!r} is not a number.", fix=fix) from None
        if not (math.isfinite(value) and 0 < value <= 1):
            raise UserError(f"--budgets: {part} is outside (0, 1].", fix=fix)
        budgets.append(value)
    return tuple(sorted(set(budgets)))


def policy_observation_length(policy: dict) -> int:
    """How many numbers per step the saved actor reads: the input width of its first layer."""
    for name, tensor in policy.items():
        if name.startswith("actor.") and name.endswith("weight") and tensor.dim() == 2:
            return int(tensor.shape[1])
    raise UserError("the agent checkpoint holds no actor network.", fix="use an `amc search --method amc` agent.pt.")


def run_pareto(
    task: Task,
    policy: Path,
    agent: AgentSection,
    budgets: Sequence[float],
    out: Path,
    refine: int = 0,
    sigma: float = 0.1,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[ParetoRow]:
    """Run the policy at each budget on the task's problem, write pareto.csv, the strategies and pareto.png."""
    problem = task.problem
    if not isinstance(problem, ChannelProblem):
        raise UserError(
            f"amc pareto prunes channels; this run's search.granularity is {task.config.search.granularity}.",
            fix="use a run of search.granularity channel.",
        )
    if refine < 0 or not (math.isfinite(sigma) and sigma > 0):
        raise UserError(f"--refine {refine} / --sigma {sigma}: need K >= 0 and sigma > 0.", fix="e.g. --refine 8.")
    smallest = problem.budget.min_cost / problem.dense_cost
    if budgets[0] < smallest:
        raise UserError(
            f"--budgets {budgets[0]} cannot be met: with every group at search.lbound the network costs "
            f"{smallest:.3f} of the dense cost.",
            fix=f"use budgets of at least {math.ceil(1000 * smallest) / 1000}.",
        )
    conditioned = agent.budget_range is not None
    if not conditioned:
        log(
            f"warning: {policy} was learned without agent.budget_range: it does not see the budget, so at each "
            "budget only the clipping changes its strategy."
        )
    env = ChannelPruningEnv(problem, observe_budget=conditioned)
    weights = read_policy(policy)
    expected, found = len(env.observation_space.sample()), policy_observation_length(weights)
    if expected != found:
        raise UserError(
            f"the policy in {policy} reads {found} numbers per step, but this problem's observation has {expected} "
            f"(AMC's 13 fields, the problem's own{', the budget' if conditioned else ''}).",
            fix="apply a policy to the kind of problem it learned on (the same search.granularity, bits or not).",
        )
    actor = make_agent(env, agent, len(problem.order), task.config.experiment.seed)
    load_policy_weights(actor, policy)
    whole = _whole_split(task)
    configured = problem.budget
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for index, ratio in enumerate(budgets):
            problem.budget = _budget_at(configured, ratio)
            rows.append(_one_budget(task, env, actor, whole, index, ratio, out, refine, sigma))
            row = rows[-1]
            log(
                f"budget {ratio:.2f}: policy {100 * row.accuracy:.2f}% at {row.share_of_dense:.3f} of dense "
                f"({row.source}); uniform {100 * row.uniform_accuracy:.2f}% at {row.uniform_share:.3f}"
            )
    finally:
        problem.budget = configured
    _write_csv(rows, out / "pareto.csv")
    plot_front(rows, out / "pareto.png", f"{task.config.model.name}: policy vs uniform (search-val)")
    return rows


def _budget_at(budget: Budget, ratio: float) -> Budget:
    return replace(budget, value=ratio * budget.dense_cost)


def _whole_split(task: Task) -> Scorer:
    """The whole search-val split with the search's BN images (the search's own scorer without data)."""
    scorer = task.problem.scorer
    if task.data is not None and isinstance(scorer, SearchValScorer):
        return scorer.on_whole(task.data.search_val, task.config.data.batch_size)
    return scorer


def _play(env: ChannelPruningEnv, act: Callable[[np.ndarray], np.ndarray]) -> Outcome:
    obs, _ = env.reset()
    while True:
        obs, _, terminated, _, info = env.step(act(obs))
        if terminated:
            return info["outcome"]


def _one_budget(task: Task, env: ChannelPruningEnv, actor: object, whole: Scorer, index: int, ratio: float,
                out: Path, refine: int, sigma: float) -> ParetoRow:  # fmt: skip
    problem = task.problem
    assert isinstance(problem, ChannelProblem)

    def greedy(obs: np.ndarray) -> np.ndarray:
        return actor.predict(obs, deterministic=True)[0]  # type: ignore[attr-defined]

    noise = TruncatedNormalActionNoise(sigma, decay=1.0)
    noise.rng = np.random.default_rng((task.config.experiment.seed, index))
    outcomes = [("greedy", _play(env, greedy))]
    outcomes += [(f"refine-{k}", _play(env, lambda obs: noise.perturb(greedy(obs), 0))) for k in range(1, refine + 1)]
    budget = problem.budget.value
    distinct: dict[tuple, tuple[str, Outcome]] = {}
    for source, outcome in outcomes:
        assert outcome.cost <= budget * (1 + 1e-9), "the problem's clipping lets no episode over its budget"
        distinct.setdefault(tuple(sorted(outcome.decisions.items())), (source, outcome))
    chosen = list(distinct.values())
    candidates: list[Candidate] = [
        (EpisodeRow(n, o.reward, o.accuracy, o.cost, budget, list(o.keep_ratios), 0.0), o.result, o.decisions)
        for n, (_, o) in enumerate(chosen)
    ]
    ranking = rerank(problem, candidates, whole, int(getattr(whole, "images", 0)))
    source, best = chosen[ranking.chosen]
    accuracy = ranking.candidates[ranking.chosen].accuracy
    uniform = uniform_kept(problem, uniform_keep(problem))
    uniform_cost = problem.cost(uniform)
    uniform_accuracy = float(whole(problem.apply(uniform)))
    stem = f"{ratio:.3g}"
    strategy, schedule = out / f"strategy-{stem}.json", out / f"schedule-{stem}.yaml"
    best.result.save(strategy)
    save_schedule(best.result, schedule)  # type: ignore[arg-type]
    dense = problem.dense_cost
    return ParetoRow(
        ratio, budget, best.cost, best.cost / dense, accuracy, best.accuracy, source, uniform_cost,
        uniform_cost / dense, uniform_accuracy, strategy.name, schedule.name,
    )  # fmt: skip


def _write_csv(rows: Sequence[ParetoRow], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([f"{value:.6g}" if isinstance(value, float) else value for value in astuple(row)])
    atomic_write_text(path, buffer.getvalue())


def read_pareto(path: Path) -> list[dict[str, str]]:
    """pareto.csv as {column: text} rows."""
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))


def plot_front(
    rows: Sequence[ParetoRow], path: Path, title: str, extra: dict[str, list[tuple[float, float]]] | None = None
) -> None:
    """Search-val accuracy vs cost share: the policy's front and uniform's beside it (plus any `extra` series of
    (share, accuracy) points, e.g. separate fixed-budget searches)."""
    fig, axis = plt.subplots(figsize=(7, 5))
    series = {
        "policy": [(row.share_of_dense, row.accuracy) for row in rows],
        "uniform": [(row.uniform_share, row.uniform_accuracy) for row in rows],
        **(extra or {}),
    }
    for number, (label, points) in enumerate(series.items()):
        points = sorted(points)
        axis.plot([p[0] for p in points], [100 * p[1] for p in points], marker="os^Dv"[number % 5], label=label)
    axis.set_xlabel("cost / dense cost (cost model)")
    axis.set_ylabel("search-val accuracy (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
