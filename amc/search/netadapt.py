"""NetAdapt (Yang et al. ECCV 2018): shrink the network step by step, each step the most accurate single-group cut.

Iteration i sets a cost target `cost(current) - R0 * decay^(i-1)` (R0 = search.netadapt.step of the dense cost,
never below the budget). For every coupling group it proposes the largest allowed channel count (multiples of
round_to) that alone brings the current network to the target by the cost model, removes channels of the
CURRENT (already pruned and fine-tuned) network by filter norm (search.selection; the paper's l2 in
configs/methods/netadapt.yaml), fine-tunes it briefly (search.netadapt.finetune_steps SGD steps on training
batches drawn from (seed, iteration), the same for every candidate) and scores it on search-val. The most
accurate candidate becomes the current network; the search stops when it meets the budget. The long-term
fine-tune of the result is `amc evaluate`'s job.

The current network is held as kept channel counts per group of the ORIGINAL layer table (counts are absolute, so they
mean the same on the thinned network's own table) plus the fine-tuned weights. Both are saved atomically after
every iteration (netadapt/state.pt: plain tensors and numbers, loaded with weights_only=True), and --resume
continues from the last finished iteration. Every candidate is a row of episodes.csv (the changed group shows in
its keep columns); netadapt/iterations.csv has one line per iteration. The candidates of one iteration are
independent and are scored on search.workers (local processes or Ray).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from amc.config import NetAdaptSection
from amc.data import iterate_batches
from amc.device import autocast, module_device
from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.io import atomic_torch_save, atomic_write_text
from amc.problem import ChannelProblem, Outcome, PrunedModel, Task
from amc.pruning import PruningError, prune_network
from amc.search.baselines.common import channel_problem, open_folder, record
from amc.search.parallel import Executor, open_executor
from amc.search.result import SearchResult, finish_search
from amc.search.run_folder import RunFolder

STATE_FILE = Path("netadapt") / "state.pt"
ITERATIONS_FILE = Path("netadapt") / "iterations.csv"
STATE_VERSION = 1
ITERATION_COLUMNS = ("iteration", "target", "candidates", "episode", "group", "leader", "kept", "cost", "accuracy")


# ----------------------------------------------------------------- the schedule


def iteration_target(current_cost: float, dense_cost: float, iteration: int, step: float, decay: float,
                     budget: float) -> float:  # fmt: skip
    """Cost target of `iteration` (1-based): the current cost minus R0 * decay^(iteration-1), not below budget."""
    return max(current_cost - step * dense_cost * decay ** (iteration - 1), budget)


def propose(problem: ChannelProblem, kept: Mapping[int, int], target: float) -> list[tuple[int, int]]:
    """(group, count) candidates: per group the largest smaller count that alone meets `target`.

    When no single group can reach the target (a large step late in the search), each group is cut to its
    smallest count instead, which still shrinks the network every iteration, so the search ends."""
    candidates: list[tuple[int, int]] = []
    fallback: list[tuple[int, int]] = []
    for g in problem.order:
        current = kept.get(g, problem.table.groups[g].channels)
        smaller = [count for count in problem.candidates[g] if count < current]
        if not smaller:
            continue
        fallback.append((g, smaller[0]))
        count = problem.largest_feasible(g, smaller, kept, target)
        if count is not None:
            candidates.append((g, count))
    return candidates or fallback


# ----------------------------------------------------------------- workers


@dataclass(frozen=True)
class Current:
    """The network NetAdapt has reached: kept counts per original group and its fine-tuned weights."""

    iteration: int
    kept: dict[int, int]
    weights: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Candidate:
    current: Current
    group: int
    count: int


@dataclass
class Worker:
    """A worker's context: the task (without the evaluation-only data) and the current network as a PrunedModel,
    rebuilt once per iteration. The current network goes with each candidate because it changes every iteration
    (~1 MB of weights for ResNet-20, small next to a short-term fine-tune)."""

    task: Task
    train: Dataset | None
    start_model: tuple[int, PrunedModel] | None = None

    @property
    def problem(self) -> ChannelProblem:
        return channel_problem(self.task)

    def start(self, current: Current) -> PrunedModel:
        if self.start_model is None or self.start_model[0] != current.iteration:
            model = materialise(self.problem, current)
            table = build_layer_table(model, self.task.input_size, self.task.config.model.name)
            check_groups(self.problem.table, table)
            self.start_model = (current.iteration, PrunedModel(dict(current.kept), model, table))
        return self.start_model[1]


def worker_setup(payload: tuple[Task, Dataset | None]) -> Worker:
    task, train = payload
    return Worker(task, train)


def materialise(problem: ChannelProblem, current: Current) -> nn.Module:
    """The base model thinned to `current.kept` (architecture only), with the current weights loaded."""
    model = prune_network(problem.model, problem.table, current.kept).model
    model.load_state_dict(current.weights)
    return model.eval()


def check_groups(original: LayerTable, current: LayerTable) -> None:
    """The thinned network's coupling groups must be the original's, in the same order (counts are shared)."""
    if [g.leader for g in original.groups] != [g.leader for g in current.groups]:
        raise PruningError(
            "the thinned network's coupling groups differ from the original's; NetAdapt cannot continue on it.",
            fix="report this model; meanwhile use another search method.",
        )


def score_candidate(worker: Worker, candidate: Candidate) -> Outcome:
    """Worker function: cut one group of the current network, fine-tune it briefly, score it on search-val."""
    config = worker.task.config
    settings = config.search.netadapt
    current = candidate.current
    kept = {**current.kept, candidate.group: candidate.count}

    def short_term_finetune(model: nn.Module) -> None:
        if settings.finetune_steps:
            seed = iteration_seed(config.experiment.seed, current.iteration)
            finetune_(model, worker.train, settings.finetune_steps, settings.lr, config.finetune.weight_decay,
                      config.finetune.batch_size, seed, config.experiment.amp)  # fmt: skip

    return worker.problem.score(kept, start=worker.start(current), tune=short_term_finetune, keep_weights=True)


def iteration_seed(seed: int, iteration: int) -> int:
    return int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0])


def train_batches(train: Dataset, batch_size: int, steps: int, seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """`steps` shuffled training batches, epoch after epoch, in an order fixed by `seed`."""
    given, epoch = 0, 0
    while True:
        for batch in iterate_batches(train, batch_size, shuffle=True, seed=seed + epoch):
            if given == steps:
                return
            given += 1
            yield batch
        epoch += 1


def finetune_(model: nn.Module, train: Dataset | None, steps: int, lr: float, weight_decay: float, batch_size: int,
              seed: int, amp: bool = False) -> nn.Module:  # fmt: skip
    """Short-term fine-tune in place, on the model's device: `steps` SGD steps (momentum 0.9) on training batches
    (`amp`: bfloat16 autocast)."""
    if train is None:
        raise UserError(
            "NetAdapt's short-term fine-tune needs training data, and this task has none (a model and evaluation "
            "function brought through the Python API).",
            fix="set search.netadapt.finetune_steps=0, or run `amc search` on a configured dataset.",
        )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    model.train()
    device = module_device(model)
    for images, labels in train_batches(train, batch_size, steps, seed):
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, amp):
            loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
    return model.eval()


# ----------------------------------------------------------------- state


@dataclass
class State:
    current: Current
    rows: int
    history: list[dict[str, Any]]


def save_state(out: Path, state: State) -> None:
    """Atomically: the network (plain CPU tensors), the rows of episodes.csv it covers, and the iteration log."""
    weights = {name: value.cpu() for name, value in state.current.weights.items()}
    atomic_torch_save(out / STATE_FILE, {
        "version": STATE_VERSION, "iteration": state.current.iteration,
        "kept": {str(g): count for g, count in state.current.kept.items()}, "weights": weights,
        "rows": state.rows, "history": state.history,
    })  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ITERATION_COLUMNS)
    writer.writeheader()
    writer.writerows(state.history)
    atomic_write_text(out / ITERATIONS_FILE, buffer.getvalue())


def load_state(out: Path) -> State:
    data = torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
    if data.get("version") != STATE_VERSION:
        raise UserError(
            f"{out / STATE_FILE} has state version {data.get('version')}; this amc reads version {STATE_VERSION}.",
            fix="start a new search in another --out, or use the amc version that wrote it.",
        )
    kept = {int(g): int(count) for g, count in data["kept"].items()}
    return State(Current(int(data["iteration"]), kept, data["weights"]), int(data["rows"]), list(data["history"]))


# ----------------------------------------------------------------- the search


def run_netadapt(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    search = task.config.search
    settings = search.netadapt
    problem = channel_problem(task)
    if resume and (out / STATE_FILE).exists():
        state = load_state(out)
        log(f"resuming {out} after NetAdapt iteration {state.current.iteration}")
    else:
        state = State(Current(0, {}, dict(problem.model.state_dict())), 0, [])
    folder = open_folder(task, out, resume, keep_rows=state.rows)
    train = task.data.train if task.data is not None and settings.finetune_steps else None
    budget = problem.budget
    bar = tqdm(desc="NetAdapt", unit="it", initial=state.current.iteration, disable=not progress)
    with open_executor(search, worker_setup, (replace(task, data=None), train)) as executor:
        while problem.cost(state.current.kept) > budget.value:
            if settings.max_iterations and state.current.iteration >= settings.max_iterations:
                raise UserError(
                    f"NetAdapt stopped after {state.current.iteration} iterations (search.netadapt.max_iterations) "
                    f"at {problem.cost(state.current.kept):.6g} {budget.unit}, above the budget {budget.value:.6g}.",
                    fix="continue with --resume and a larger search.netadapt.max_iterations (0: until the budget).",
                )
            state = iterate(problem, settings, executor, folder, state)
            bar.update(1)
            bar.set_postfix(cost=f"{state.history[-1]['cost']:.4g}", acc=f"{100 * state.history[-1]['accuracy']:.2f}%")
            save_state(out, state)
    bar.close()
    return finish_search(task, folder, time.perf_counter() - start, log=log)


def iterate(problem: ChannelProblem, settings: NetAdaptSection, executor: Executor, folder: RunFolder,
            state: State) -> State:  # fmt: skip
    """One NetAdapt iteration: every group's candidate scored and recorded; the most accurate one kept."""
    current = state.current
    iteration = current.iteration + 1
    budget = problem.budget
    target = iteration_target(problem.cost(current.kept), budget.dense_cost, iteration, settings.step,
                              settings.decay, budget.value)  # fmt: skip
    candidates = [Candidate(current, g, count) for g, count in propose(problem, current.kept, target)]
    best: tuple[Candidate, Outcome, int] | None = None
    for candidate, outcome in zip(candidates, executor.map_ordered(score_candidate, candidates)):
        record(folder, folder.rows_written + 1, outcome, budget.value)
        if best is None or outcome.accuracy > best[1].accuracy:
            best = (candidate, outcome, folder.rows_written)
    assert best is not None  # propose() returns candidates while the network is above the budget
    winner, outcome, episode = best
    assert outcome.weights is not None  # score_candidate keeps them
    kept = {**current.kept, winner.group: winner.count}
    line = {
        "iteration": iteration, "target": target, "candidates": len(candidates), "episode": episode,
        "group": winner.group, "leader": problem.table.groups[winner.group].leader, "kept": winner.count,
        "cost": outcome.cost, "accuracy": outcome.accuracy,
    }  # fmt: skip
    return State(Current(iteration, kept, outcome.weights), folder.rows_written, [*state.history, line])
