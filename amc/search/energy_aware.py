"""Energy-aware pruning (Yang, Chen & Sze, CVPR 2017), adapted to channel pruning under an energy budget.

The paper prunes weights layer by layer, the layers that consume the most energy first, restores each layer's
output by least squares, and keeps a layer's cut only while the accuracy drop stays within a tolerance. Here a
layer is a coupling group (its channels are removed, not masked): a group's energy is the price, by the
task's energy cost model at the current decisions, of every layer whose channels it sets (the layers that
produce them and the layers that read them), so ranking follows what cutting it can save. Each pass ranks the
groups by that energy, most first, and cuts each in turn one step down its round_to grid; a cut is scored as
the Problem scores any variant (search.selection, lstsq by default: filter norms plus the least-squares refit
of the next layer, the paper's reconstruction; BN re-estimated; search-val) and kept while the drop from the
dense network's search-val accuracy is <= the pass's tolerance; the first rejected cut moves on to the next
group. Passes repeat, re-ranked at the current decisions, with the tolerance search.energy_aware.max_drop times
growth^(pass - 1), until the budget is met. The paper's per-layer fine-tune is left out (no search method here
fine-tunes, except NetAdapt); the fine-tune of the result is `amc evaluate`'s job.

Every scored cut is a row of episodes.csv; energy_aware/state.json (the decisions, the pass, its ranking and
position, atomically written after every scored cut) lets --resume continue exactly where a run stopped, and
energy_aware/cuts.csv lists the accepted cuts.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from amc.config import EnergyAwareSection
from amc.errors import UserError
from amc.io import atomic_write_json, atomic_write_text
from amc.problem import ChannelProblem, Task
from amc.problem.accounting import ChannelAccountant
from amc.search.baselines.common import channel_problem, open_folder, record
from amc.search.result import SearchResult, finish_search
from amc.search.run_folder import RunFolder

STATE_FILE = Path("energy_aware") / "state.json"
CUTS_FILE = Path("energy_aware") / "cuts.csv"
STATE_VERSION = 1
CUT_COLUMNS = ("pass", "tolerance", "episode", "group", "leader", "kept", "energy", "cost", "accuracy", "drop")


def group_layers(problem: ChannelProblem, group: int) -> list[int]:
    """Indices of the layers whose channels `group` sets: those that produce them and those that read them."""
    return [
        layer.index
        for layer in problem.table.layers
        if layer.out_group == group or any(source == group for source, _ in layer.in_sources)
    ]


def group_energy(problem: ChannelProblem, group: int, kept: Mapping[int, int]) -> float:
    """The energy of the layers `group` sets, by the problem's cost model at the decisions `kept`."""
    accountant = problem.accountant
    assert isinstance(accountant, ChannelAccountant)  # what a channel problem prices with
    return sum(accountant.layer_cost(index, kept) for index in group_layers(problem, group))


def rank(problem: ChannelProblem, kept: Mapping[int, int]) -> list[int]:
    """The groups by energy at `kept`, most first (ties in step order)."""
    energy = {g: group_energy(problem, g, kept) for g in problem.order}
    return sorted(problem.order, key=lambda g: -energy[g])


def tolerance(settings: EnergyAwareSection, pass_number: int) -> float:
    """The accuracy drop pass `pass_number` (1-based) allows: max_drop, times growth for every pass after the first."""
    return settings.max_drop * settings.growth ** (pass_number - 1)


def check_energy(problem: ChannelProblem) -> None:
    """Refuse a cost model that does not price energy (a caller's own cost model object is only known here)."""
    if problem.budget.metric != "energy":
        raise UserError(
            f"search.method energy-aware ranks layers by their energy, but the cost model {problem.cost_model.name} "
            f"prices {problem.budget.metric} ({problem.budget.unit}).",
            fix="use an energy cost model: cost.model energy:<preset> or bitserial-energy:<device> "
            "(`amc list devices`).",
        )


# ----------------------------------------------------------------- state


@dataclass
class State:
    """Where the search stands: the decisions, the pass, its ranking and the position in it, the rows it covers."""

    kept: dict[int, int] = field(default_factory=dict)
    pass_number: int = 1
    ranked: list[int] = field(default_factory=list)
    position: int = 0
    rows: int = 0
    cuts: list[dict[str, Any]] = field(default_factory=list)
    scored: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    """(episode, accuracy, cost) of every variant scored so far, by `variant_key`: a cut a pass rejected is
    tried again in the next pass with a larger tolerance, and scoring the same variant gives the same numbers."""


def variant_key(kept: Mapping[int, int]) -> str:
    return ",".join(f"{g}:{count}" for g, count in sorted(kept.items()))


def save_state(out: Path, state: State) -> None:
    atomic_write_json(out / STATE_FILE, {
        "version": STATE_VERSION, "kept": {str(g): count for g, count in state.kept.items()},
        "pass": state.pass_number, "ranked": state.ranked, "position": state.position, "rows": state.rows,
        "cuts": state.cuts, "scored": state.scored,
    })  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CUT_COLUMNS)
    writer.writeheader()
    writer.writerows(state.cuts)
    atomic_write_text(out / CUTS_FILE, buffer.getvalue())


def load_state(out: Path) -> State:
    data = json.loads((out / STATE_FILE).read_text())
    if data.get("version") != STATE_VERSION:
        raise UserError(
            f"{out / STATE_FILE} has state version {data.get('version')}; this amc reads version {STATE_VERSION}.",
            fix="start a new search in another --out, or use the amc version that wrote it.",
        )
    kept = {int(g): int(count) for g, count in data["kept"].items()}
    ranked = [int(g) for g in data["ranked"]]
    scored = {
        key: (int(episode), float(accuracy), float(cost)) for key, (episode, accuracy, cost) in data["scored"].items()
    }
    return State(kept, int(data["pass"]), ranked, int(data["position"]), int(data["rows"]), list(data["cuts"]), scored)


# ----------------------------------------------------------------- the search


def run_energy_aware(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    problem = channel_problem(task)
    check_energy(problem)
    settings = task.config.search.energy_aware
    if resume and (out / STATE_FILE).exists():
        state = load_state(out)
        log(f"resuming {out} in pass {state.pass_number} after {len(state.cuts)} accepted cuts")
    else:
        state = State(ranked=rank(problem, {}))
    folder = open_folder(task, out, resume, keep_rows=state.rows)
    budget = problem.budget
    dense = problem.accuracy(copy.deepcopy(problem.model))  # scored like every cut (BN re-estimated too)
    bar = tqdm(desc="energy-aware", unit="cut", initial=state.rows, disable=not progress)
    while problem.cost(state.kept) > budget.value:
        if state.position == len(state.ranked):
            if all(smaller_counts(problem, state.kept, g) == [] for g in problem.order):
                raise UserError(
                    f"energy-aware pruning cut every group to lbound and the network still costs "
                    f"{problem.cost(state.kept):.6g} {budget.unit}, above the budget {budget.value:.6g}.",
                    fix="raise the budget or lower search.lbound.",
                )
            state = replace(state, pass_number=state.pass_number + 1, ranked=rank(problem, state.kept), position=0)
            allowed = 100 * tolerance(settings, state.pass_number)
            log(f"energy-aware pass {state.pass_number}: re-ranked by energy, accuracy drop <= {allowed:.3g} pt")
            save_state(out, state)
            continue
        rows = state.rows
        state = step(problem, settings, folder, state, dense)
        save_state(out, state)
        bar.update(state.rows - rows)
        bar.set_postfix(pass_=state.pass_number, cost=f"{problem.cost(state.kept):.4g}")
    bar.close()
    return finish_search(task, folder, time.perf_counter() - start, log=log)


def smaller_counts(problem: ChannelProblem, kept: Mapping[int, int], group: int) -> list[int]:
    """The allowed counts of `group` below its current one, ascending."""
    current = kept.get(group, problem.table.groups[group].channels)
    return [count for count in problem.candidates[group] if count < current]


def step(problem: ChannelProblem, settings: EnergyAwareSection, folder: RunFolder, state: State,
         dense: float) -> State:  # fmt: skip
    """Cut the ranked group at `state.position` one grid step (scored once: a variant seen before keeps its
    numbers and gets no new row); keep the cut if the drop is within the tolerance, else (or when the group is at
    its smallest count) move on to the next group."""
    group = state.ranked[state.position]
    smaller = smaller_counts(problem, state.kept, group)
    if not smaller:
        return replace(state, position=state.position + 1)
    trial = {**state.kept, group: smaller[-1]}
    key = variant_key(trial)
    if key not in state.scored:
        outcome = problem.score(trial)
        record(folder, folder.rows_written + 1, outcome, problem.budget.value)
        state = replace(state, rows=folder.rows_written, scored={
            **state.scored, key: (folder.rows_written, outcome.accuracy, outcome.cost)
        })  # fmt: skip
    episode, accuracy, cost = state.scored[key]
    allowed = tolerance(settings, state.pass_number)
    if dense - accuracy > allowed:
        return replace(state, position=state.position + 1)
    cut = {
        "pass": state.pass_number, "tolerance": allowed, "episode": episode, "group": group,
        "leader": problem.table.groups[group].leader, "kept": smaller[-1],
        "energy": group_energy(problem, group, state.kept), "cost": cost, "accuracy": accuracy,
        "drop": dense - accuracy,
    }  # fmt: skip
    return replace(state, kept=trial, cuts=[*state.cuts, cut])
