"""NetAdapt (Yang et al. ECCV 2018): shrink the network step by step, each step the most accurate single-group cut.

Iteration i sets a cost target `cost(current) - R0 * decay^(i-1)` (R0 = search.netadapt_step of the dense cost,
never below the budget). For every coupling group it proposes the largest allowed channel count (multiples of
round_to) that alone brings the current network to the target by the cost model, removes channels of the
CURRENT (already pruned and fine-tuned) network by filter norm (search.selection; the paper's l2 in
configs/methods/netadapt.yaml), fine-tunes it briefly (search.netadapt_finetune_steps SGD steps on training
batches drawn from (seed, iteration), the same for every candidate) and scores it on search-val. The most
accurate candidate becomes the current network; the search stops when it meets the budget. The long-term
fine-tune of the result is `amc evaluate`'s job.

The network is held as kept channel counts per group of the ORIGINAL layer table (counts are absolute, so they
mean the same on the thinned network's own table) plus the fine-tuned weights. Both are saved atomically after
every iteration (netadapt/state.pt: plain tensors and numbers, loaded with weights_only=True), and --resume
continues from the last finished iteration. Every candidate is a row of episodes.csv (the changed group shows in
its keep columns); netadapt/iterations.csv has one line per iteration. The candidates of one iteration are
independent and are scored on search.workers (local processes or Ray).
"""

from __future__ import annotations

import copy
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

from amc.config import SearchSection
from amc.data import iterate_batches
from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.io import atomic_torch_save, atomic_write_text
from amc.pruning import PruningError, thin
from amc.search.accounting import CostAccountant
from amc.search.baselines.common import Scored, channel_env, keep_ratios, open_folder, record, strategy_of
from amc.search.parallel import Executor, open_executor
from amc.search.result import SearchResult, finish_search
from amc.search.run_folder import RunFolder
from amc.search.task import SearchTask
from envs import ChannelPruningEnv

STATE_FILE = Path("netadapt") / "state.pt"
ITERATIONS_FILE = Path("netadapt") / "iterations.csv"
STATE_VERSION = 1
ITERATION_COLUMNS = ("iteration", "target", "candidates", "episode", "group", "leader", "kept", "cost", "accuracy")


# ----------------------------------------------------------------- the schedule


def iteration_target(current_cost: float, dense_cost: float, iteration: int, step: float, decay: float,
                     budget: float) -> float:  # fmt: skip
    """Cost target of `iteration` (1-based): the current cost minus R0 * decay^(iteration-1), not below budget."""
    return max(current_cost - step * dense_cost * decay ** (iteration - 1), budget)


def propose(env: ChannelPruningEnv, kept: Mapping[int, int], target: float) -> list[tuple[int, int]]:
    """(group, count) candidates: per group the largest smaller count that alone meets `target`.

    When no single group can reach the target (a large step late in the search), each group is cut to its
    smallest count instead, which still shrinks the network every iteration, so the search ends."""
    accountant = env.accountant
    assert isinstance(accountant, CostAccountant)  # a channel env (channel_env), not an element-wise one
    candidates: list[tuple[int, int]] = []
    fallback: list[tuple[int, int]] = []
    for g in env.order:
        current = kept.get(g, env.table.groups[g].channels)
        smaller = [count for count in env.counts[g] if count < current]
        if not smaller:
            continue
        fallback.append((g, smaller[0]))
        count = accountant.largest_feasible(g, smaller, kept, target)
        if count is not None:
            candidates.append((g, count))
    return candidates or fallback


# ----------------------------------------------------------------- workers


@dataclass(frozen=True)
class Network:
    """The current network: kept counts per original group and its fine-tuned weights."""

    iteration: int
    kept: dict[int, int]
    weights: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Candidate:
    network: Network
    group: int
    count: int


@dataclass(frozen=True)
class CandidateResult:
    accuracy: float
    weights: dict[str, torch.Tensor]
    timings: dict[str, float]
    wall_s: float


@dataclass
class Worker:
    """A worker's context: the task (without the evaluation-only data) and the current network, rebuilt once
    per iteration. The current network goes with each candidate because it changes every iteration (~1 MB of
    weights for ResNet-20, small next to a short-term fine-tune)."""

    task: SearchTask
    train: Dataset | None
    current: tuple[int, nn.Module, LayerTable] | None = None

    def network(self, network: Network) -> tuple[nn.Module, LayerTable]:
        if self.current is None or self.current[0] != network.iteration:
            model = materialise(self.task, network)
            table = build_layer_table(model, self.task.input_size, self.task.config.model.name)
            check_groups(self.task.table, table)
            self.current = (network.iteration, model, table)
        return self.current[1], self.current[2]


def worker_setup(payload: tuple[SearchTask, Dataset | None]) -> Worker:
    task, train = payload
    return Worker(task, train)


def materialise(task: SearchTask, network: Network) -> nn.Module:
    """The base model thinned to `network.kept` (architecture only), with the network's weights loaded."""
    model = thin(task.model, task.table, network.kept) if network.kept else copy.deepcopy(task.model)
    model.load_state_dict(network.weights)
    return model.eval()


def check_groups(original: LayerTable, current: LayerTable) -> None:
    """The thinned network's coupling groups must be the original's, in the same order (counts are shared)."""
    if [g.leader for g in original.groups] != [g.leader for g in current.groups]:
        raise PruningError(
            "the thinned network's coupling groups differ from the original's; NetAdapt cannot continue on it.",
            fix="report this model; meanwhile use another search method.",
        )


def score_candidate(worker: Worker, candidate: Candidate) -> CandidateResult:
    """Worker function: cut one group of the current network, fine-tune it briefly, score it on search-val."""
    tick = time.perf_counter()
    task = worker.task
    search = task.config.search
    model, table = worker.network(candidate.network)
    calibration = task.evaluator.bn_batches if search.selection == "lstsq" else None
    pruned = thin(model, table, {candidate.group: candidate.count}, selection=search.selection, calibration=calibration)
    prune_s = time.perf_counter() - tick
    if search.netadapt_finetune_steps:
        seed = iteration_seed(task.config.experiment.seed, candidate.network.iteration)
        finetune_(pruned, worker.train, search.netadapt_finetune_steps, search.netadapt_lr,
                  task.config.finetune.weight_decay, task.config.finetune.batch_size, seed)  # fmt: skip
    finetune_s = time.perf_counter() - tick - prune_s
    accuracy = float(task.evaluator(pruned))
    eval_s = time.perf_counter() - tick - prune_s - finetune_s
    weights = {name: value.detach().clone() for name, value in pruned.state_dict().items()}
    timings = {"prune_s": prune_s, "finetune_s": finetune_s, "eval_s": eval_s}
    return CandidateResult(accuracy, weights, timings, time.perf_counter() - tick)


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
              seed: int) -> nn.Module:  # fmt: skip
    """Short-term fine-tune in place: `steps` SGD steps (momentum 0.9) on training batches."""
    if train is None:
        raise UserError(
            "NetAdapt's short-term fine-tune needs training data, and this task has none (a model and evaluation "
            "function brought through the Python API).",
            fix="set search.netadapt_finetune_steps=0, or run `amc search` on a configured dataset.",
        )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    model.train()
    for images, labels in train_batches(train, batch_size, steps, seed):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
    return model.eval()


# ----------------------------------------------------------------- state


@dataclass
class State:
    network: Network
    rows: int
    history: list[dict[str, Any]]


def save_state(out: Path, state: State) -> None:
    """Atomically: the network (plain tensors), the rows of episodes.csv it covers, and the iteration log."""
    atomic_torch_save(out / STATE_FILE, {
        "version": STATE_VERSION, "iteration": state.network.iteration,
        "kept": {str(g): count for g, count in state.network.kept.items()}, "weights": state.network.weights,
        "rows": state.rows, "history": state.history,
    })  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ITERATION_COLUMNS)
    writer.writeheader()
    writer.writerows(state.history)
    atomic_write_text(out / ITERATIONS_FILE, buffer.getvalue())


def load_state(out: Path) -> State:
    data = torch.load(out / STATE_FILE, weights_only=True)
    if data.get("version") != STATE_VERSION:
        raise UserError(
            f"{out / STATE_FILE} has state version {data.get('version')}; this amc reads version {STATE_VERSION}.",
            fix="start a new search in another --out, or use the amc version that wrote it.",
        )
    kept = {int(g): int(count) for g, count in data["kept"].items()}
    return State(Network(int(data["iteration"]), kept, data["weights"]), int(data["rows"]), list(data["history"]))


# ----------------------------------------------------------------- the search


def run_netadapt(
    task: SearchTask, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    search = task.config.search
    env = channel_env(task)
    if resume and (out / STATE_FILE).exists():
        state = load_state(out)
        log(f"resuming {out} after NetAdapt iteration {state.network.iteration}")
    else:
        state = State(Network(0, {}, dict(task.model.state_dict())), 0, [])
    folder = open_folder(task, env, out, resume, keep_rows=state.rows)
    train = task.bundle.train if task.bundle is not None and search.netadapt_finetune_steps else None
    budget = env.budget.value
    bar = tqdm(desc="NetAdapt", unit="it", initial=state.network.iteration, disable=not progress)
    with open_executor(search, worker_setup, (replace(task, bundle=None), train)) as executor:
        while env.accountant.cost(state.network.kept) > budget:
            if search.netadapt_max_iterations and state.network.iteration >= search.netadapt_max_iterations:
                raise UserError(
                    f"NetAdapt stopped after {state.network.iteration} iterations (search.netadapt_max_iterations) "
                    f"at {env.accountant.cost(state.network.kept):.6g} {env.budget.unit}, above the budget "
                    f"{budget:.6g}.",
                    fix="continue with --resume and a larger search.netadapt_max_iterations (0: until the budget).",
                )
            state = iterate(env, search, executor, folder, state)
            bar.update(1)
            bar.set_postfix(cost=f"{state.history[-1]['cost']:.4g}", acc=f"{100 * state.history[-1]['accuracy']:.2f}%")
            save_state(out, state)
    bar.close()
    return finish_search(task, folder, env.budget, time.perf_counter() - start, log=log)


def iterate(env: ChannelPruningEnv, search: SearchSection, executor: Executor, folder: RunFolder,
            state: State) -> State:  # fmt: skip
    """One NetAdapt iteration: every group's candidate scored and recorded; the most accurate one kept."""
    network = state.network
    iteration = network.iteration + 1
    target = iteration_target(env.accountant.cost(network.kept), env.budget.dense_cost, iteration,
                              search.netadapt_step, search.netadapt_decay, env.budget.value)  # fmt: skip
    candidates = [Candidate(network, g, count) for g, count in propose(env, network.kept, target)]
    best: tuple[Candidate, CandidateResult, int] | None = None
    for candidate, result in zip(candidates, executor.map_ordered(score_candidate, candidates)):
        kept = {**network.kept, candidate.group: candidate.count}
        cost = env.accountant.cost(kept)
        scored = Scored(
            kept, keep_ratios(env, kept), cost, result.accuracy, env.reward_of(result.accuracy, cost),
            strategy_of(env, kept, cost, result.accuracy), result.timings, result.wall_s,
        )  # fmt: skip
        record(folder, folder.rows_written + 1, scored, env.budget.value)
        if best is None or result.accuracy > best[1].accuracy:
            best = (candidate, result, folder.rows_written)
    assert best is not None  # propose() returns candidates while the network is above the budget
    winner, result, episode = best
    kept = {**network.kept, winner.group: winner.count}
    line = {
        "iteration": iteration, "target": target, "candidates": len(candidates), "episode": episode,
        "group": winner.group, "leader": env.table.groups[winner.group].leader, "kept": winner.count,
        "cost": env.accountant.cost(kept), "accuracy": result.accuracy,
    }  # fmt: skip
    return State(Network(iteration, kept, result.weights), folder.rows_written, [*state.history, line])
