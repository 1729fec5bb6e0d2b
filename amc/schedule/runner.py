"""Execute a schedule's timeline while training: masks installed when a step fires, held after every optimiser
step, and channels physically removed at the epoch the schedule thins.

The timeline (amc.schedule.timeline) says, per firing epoch, the physical channel count of every coupling group
and the mask on every masked layer. At the start of such an epoch the runner thins the network to the step's
channels (L1 selection, `amc.pruning.thinning`; the optimiser is rebuilt for the new parameters), then computes
each mask the step fired, counted as the timeline counts them (Distiller's `int(sparsity * numel)`): elements by
magnitude, blocks, filters and input channels by L1 norm. Masks are held as Distiller holds them: multiplied into
the weights after every optimiser step (not a pruning reparametrisation, so the optimiser and the checkpoint see
plain parameters), so a masked weight is exactly zero whenever the network runs, and nothing is left to remove
at the end. A killed run resumes from its per-epoch checkpoint: the network is rebuilt to the checkpoint's shapes,
and the masks are the checkpoint's zeros.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.io import atomic_write_json
from amc.locks import lock_folder
from amc.pruning.thinning import thin
from amc.resume import refuse_changed
from amc.schedule.schedule import Schedule
from amc.schedule.timeline import BLOCKS, CHANNELS, ELEMENTS, FILTERS, Action, Mask, Step

STATE_FILE = "finetune.state.pt"
JOB_FILE = "finetune.job.json"
PROGRESS_FILE = "finetune.progress.json"
PROGRESS_TYPE = "amc.ScheduleProgress"
PROGRESS_VERSION = 1


@dataclass(frozen=True)
class LayerSparsity:
    """One masked layer after a step: the schedule's sparsity (Distiller's counting) beside the weights' own."""

    layer: str
    scheduled: float
    actual: float


@dataclass(frozen=True)
class EpochReport:
    """One trained epoch (1-based, as EpochRecord): what fired before it, channels left, sparsity, accuracy."""

    epoch: int
    fired: tuple[str, ...]
    channels: int
    """Output channels of all conv/linear layers together, as the network trained this epoch."""
    layers: tuple[LayerSparsity, ...]
    train_loss: float
    val_top1: float
    test_top1: float | None


@dataclass(frozen=True)
class ScheduleHooks:
    """What the training loop calls (amc.training.loop.TrainHooks carries them; this layer sits below it)."""

    epoch_start: Callable[[int, nn.Module], bool]
    """Before epoch `epoch` (0-based): fire its step; True when the parameters were replaced (thinning)."""
    after_step: Callable[[nn.Module], None]
    """After every optimiser step: put the masks back."""
    epoch_end: Callable[[int, float, float, nn.Module], None]
    """After epoch `epoch` (1-based) with its train loss and search-val top-1: record and write the report."""


Trainer = Callable[[nn.Module, Path, ScheduleHooks], None]
"""Trains a model in place, checkpointing each epoch at the path and resuming from it, calling the hooks
(amc.cli.finetune_cmd.loop_trainer: amc's training loop)."""


@dataclass(frozen=True)
class ScheduleRun:
    """The trained network (masks baked into plain weights) and its per-epoch report."""

    model: nn.Module
    epochs: tuple[EpochReport, ...]
    seconds: float


@dataclass
class _Runner:
    """The mutable state of one run: the step in force and the masks held on the weights."""

    table: LayerTable
    steps: Mapping[int, Step]
    example: Tensor
    score: Callable[[nn.Module], float] | None = None
    progress_path: Path | None = None
    reports: dict[int, EpochReport] = field(default_factory=dict)
    masks: dict[str, Tensor] = field(default_factory=dict)
    current: Step | None = None
    fired: tuple[str, ...] = ()
    started: bool = False

    def state_before(self, epoch: int) -> Step | None:
        """The step in force once epochs 0..epoch-1 have run (None: nothing fired yet)."""
        earlier = [e for e in self.steps if e < epoch]
        return self.steps[max(earlier)] if earlier else None

    def restructure_(self, model: nn.Module, epochs_done: int) -> None:
        """Give a fresh `model` the shapes the network had after `epochs_done` epochs (to load a checkpoint)."""
        state = self.state_before(epochs_done)
        if state is not None and _shrinks(self.table, state.kept):
            _adopt_(model, thin(model, self.table, state.kept, example_input=self.example))

    def epoch_start(self, epoch: int, model: nn.Module) -> bool:
        replaced = False
        if not self.started:
            self.started = True
            self.current = self.state_before(epoch)
            if self.current is not None:  # resumed: the checkpoint's zeros are the masks
                self.masks = {name: _weight(model, name) != 0 for name in self.current.masks}
        step = self.steps.get(epoch)
        self.fired = tuple(action.text for action in step.actions) if step else ()
        if step is None:
            return False
        before = self.current.kept if self.current else {g.index: g.channels for g in self.table.groups}
        if dict(step.kept) != dict(before):
            self.thin_(model, step.kept)
            replaced = True
        previous = self.current.masks if self.current else {}
        masks = {}
        for name, mask in step.masks.items():
            if previous.get(name) == mask and name in self.masks and not replaced:
                masks[name] = self.masks[name]
            elif previous.get(name) == mask:
                masks[name] = _weight(model, name) != 0  # unchanged, re-read after thinning
            else:
                masks[name] = _mask(model, name, mask)
        self.masks, self.current = masks, step
        self.after_step(model)
        return replaced

    def thin_(self, model: nn.Module, kept: Mapping[int, int]) -> None:
        """Thin `model` in place to `kept` channels per group of the original table (L1 selection)."""
        now = build_layer_table(model, tuple(self.example.shape[1:]), self.table.model_name)
        if [g.leader for g in now.groups] != [g.leader for g in self.table.groups]:
            raise UserError(
                f"{self.table.model_name}: after thinning, its coupling groups are no longer those of the schedule.",
                fix="report this model; run the schedule without its thinning step.",
            )
        counts = {index: count for index, count in kept.items() if count != now.groups[index].channels}
        _adopt_(model, thin(model, now, counts, example_input=self.example))

    def after_step(self, model: nn.Module) -> None:
        with torch.no_grad():
            for name, mask in self.masks.items():
                _weight(model, name).mul_(mask)

    def epoch_end(self, epoch: int, train_loss: float, val_top1: float, model: nn.Module) -> None:
        test = self.score(model) if self.score is not None else None
        layers = self.sparsity(model)
        channels = sum(_out_channels(model.get_submodule(layer.name)) for layer in self.table.layers)
        self.reports[epoch] = EpochReport(epoch, self.fired, channels, layers, train_loss, val_top1, test)
        if self.progress_path is not None:
            write_progress(self.progress_path, self.reports)

    def sparsity(self, model: nn.Module) -> tuple[LayerSparsity, ...]:
        if self.current is None:
            return ()
        specs = self.table.specs(self.current.kept)
        rows = []
        for name, mask in sorted(self.current.masks.items()):
            spec = specs[self.table.layer(name).index]
            weight = _weight(model, name)
            rows.append(LayerSparsity(name, mask.zeros(spec) / spec.weight_count, float((weight == 0).float().mean())))
        return tuple(rows)


def run_schedule(
    model: nn.Module,
    table: LayerTable,
    schedule: Schedule,
    out: Path,
    train: Trainer,
    epochs: int,
    settings: Mapping[str, Any],
    score: Callable[[nn.Module], float] | None = None,
) -> ScheduleRun:
    """Train `model` (changed in place: thinned, masked) with `train` for `epochs` epochs while `schedule`'s
    timeline fires; checkpoint each epoch in `out` (locked) and resume from it only when the schedule and the
    training `settings` are the same. `score` (e.g. test top-1) is recorded after each epoch."""
    check_epochs(schedule, epochs)
    out.mkdir(parents=True, exist_ok=True)
    with lock_folder(out):
        job = {"schedule": schedule.to_dict(), "timeline": _timeline_key(schedule), "settings": dict(settings)}
        _check_job(out, job)
        device = next(model.parameters()).device
        example = torch.randn(1, *table.input_size, device=device)
        runner = _Runner(table, {step.epoch: step for step in schedule.timeline}, example, score, out / PROGRESS_FILE)
        state_path = out / STATE_FILE
        if state_path.is_file():
            done = int(torch.load(state_path, map_location="cpu", weights_only=True)["epoch"])
            runner.restructure_(model, done)
            runner.reports = {e: r for e, r in read_progress(out / PROGRESS_FILE).items() if e <= done}
        begin = time.perf_counter()
        train(model, state_path, ScheduleHooks(runner.epoch_start, runner.after_step, runner.epoch_end))
        runner.after_step(model)
        reports = tuple(runner.reports[epoch] for epoch in sorted(runner.reports))
        return ScheduleRun(model, reports, time.perf_counter() - begin)


def with_timeline(schedule: Schedule, table: LayerTable) -> Schedule:
    """`schedule` with a timeline: its own (a Distiller YAML), or, for amc's JSON (a structured strategy and/or
    element-wise densities, one-shot), one step at epoch 0 that thins to the strategy and masks the densities."""
    if schedule.timeline or (schedule.strategy is None and schedule.densities is None):
        return schedule
    kept = {group.index: group.channels for group in table.groups} | schedule.kept_channels(table)
    densities = schedule.densities.densities if schedule.densities else {}
    if schedule.densities is not None and schedule.densities.pattern.granularity != "element":
        raise UserError(
            f"the schedule's densities are {schedule.densities.pattern.granularity} masks; `amc finetune` runs "
            "element-wise densities only.",
            fix="fine-tune it with `amc evaluate`, which applies every mask pattern.",
        )
    masks = {name: Mask(ELEMENTS, "(amc)", 0, sparsity=1.0 - d) for name, d in densities.items() if d < 1.0}
    step = Step(0, (Action("(amc)", "", "thin to the strategy, mask the densities"),), kept, masks)
    return replace(schedule, timeline=(step,))


def check_epochs(schedule: Schedule, epochs: int) -> None:
    """Refuse a run shorter than the schedule: its later steps would never fire (extending silently would train
    longer than asked)."""
    if not schedule.timeline:
        raise UserError(
            "the schedule fires nothing (no pruner or thinning policy), so there is nothing to run.",
            fix="pass a schedule with at least one pruner policy, or use `amc train` to train without one.",
        )
    last = schedule.timeline[-1].epoch
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= last:
        raise UserError(
            f"{epochs!r} epoch(s) is too short for the schedule: its last step fires at epoch {last} (0-based), "
            f"so it needs at least {last + 1}.",
            fix=f"use --epochs {last + 1} or more (the default is {last + 1}).",
        )


def default_epochs(schedule: Schedule) -> int:
    """Enough epochs for every step to fire and be trained once."""
    return schedule.timeline[-1].epoch + 1 if schedule.timeline else 1


def write_progress(path: Path, reports: Mapping[int, EpochReport]) -> None:
    atomic_write_json(path, {"_type": PROGRESS_TYPE, "_version": PROGRESS_VERSION,
                             "epochs": [asdict(reports[e]) for e in sorted(reports)]})  # fmt: skip


def read_progress(path: Path) -> dict[int, EpochReport]:
    """The per-epoch report a run wrote so far ({} when there is none yet)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("_type") != PROGRESS_TYPE:
        raise UserError(f"{path} is not an amc schedule progress file.", fix="delete it, or use another --out.")
    if not isinstance(data.get("_version"), int) or data["_version"] > PROGRESS_VERSION:
        raise UserError(f"{path} has format version {data.get('_version')!r}; this amc reads 1..{PROGRESS_VERSION}.",
                        fix="upgrade amc.")  # fmt: skip
    reports = {}
    for row in data["epochs"]:
        layers = tuple(LayerSparsity(**layer) for layer in row["layers"])
        reports[int(row["epoch"])] = EpochReport(**{**row, "fired": tuple(row["fired"]), "layers": layers})
    return reports


def _check_job(out: Path, job: dict[str, Any]) -> None:
    """A checkpoint in `out` is resumed only for the same schedule, settings and steps per epoch."""
    path = out / JOB_FILE
    job = json.loads(json.dumps(job))  # compared as JSON gives it back: lists, string keys
    if (out / STATE_FILE).is_file() and path.is_file():
        stored = json.loads(path.read_text())
        fix = f"use another --out, or delete {out / STATE_FILE} to start over."
        if stored.get("schedule") != job["schedule"] or stored.get("timeline") != job["timeline"]:
            raise UserError(f"{out} holds a fine-tuning checkpoint of another schedule.", fix=fix)
        refuse_changed(f"the schedule run in {out}", stored.get("settings", {}), job["settings"], fix=fix)
    atomic_write_json(path, job)


def _timeline_key(schedule: Schedule) -> list[Any]:
    """The timeline as plain data (what a resumed run must replay identically)."""
    return [[step.epoch, sorted(step.kept.items()), sorted((n, asdict(m)) for n, m in step.masks.items())]
            for step in schedule.timeline]  # fmt: skip


def _shrinks(table: LayerTable, kept: Mapping[int, int]) -> bool:
    return any(count != table.groups[index].channels for index, count in kept.items())


def _adopt_(model: nn.Module, new: nn.Module) -> None:
    """Make `model` (the object the training loop holds) become `new`, a thinned deep copy of it."""
    model.__dict__.clear()
    model.__dict__.update(new.__dict__)


def _weight(model: nn.Module, name: str) -> Tensor:
    return cast(Tensor, model.get_submodule(name).weight)


def _out_channels(module: nn.Module) -> int:
    return int(module.out_features if isinstance(module, nn.Linear) else module.out_channels)  # type: ignore[arg-type]


def _mask(model: nn.Module, name: str, mask: Mask) -> Tensor:
    """The keep-mask a step's `mask` puts on layer `name` now: smallest magnitudes (elements) or L1 norms
    (blocks, filters, input channels) zeroed, counted as the timeline counts them."""
    weight = _weight(model, name).detach()
    if mask.kind == ELEMENTS:
        return _drop_smallest(weight.abs().flatten(), int(mask.sparsity * weight.numel())).reshape(weight.shape)
    if mask.kind == BLOCKS:
        blocks = weight.reshape(-1, mask.block)
        drop = int(mask.sparsity * blocks.shape[0])
        return _drop_smallest(blocks.abs().sum(dim=1), drop)[:, None].expand(blocks.shape).reshape(weight.shape)
    if mask.kind == FILTERS:
        norms = weight.abs().reshape(weight.shape[0], -1).sum(dim=1)
        keep = _drop_smallest(norms, min(mask.count, weight.shape[0] - 1))
        return keep.reshape(-1, *([1] * (weight.dim() - 1))).expand(weight.shape)
    if mask.kind == CHANNELS:
        norms = weight.abs().transpose(0, 1).reshape(weight.shape[1], -1).sum(dim=1)
        keep = _drop_smallest(norms, min(mask.count, weight.shape[1] - 1))
        return keep.reshape(1, -1, *([1] * (weight.dim() - 2))).expand(weight.shape)
    raise UserError(f"layer {name}: mask kind {mask.kind!r} is not one amc can run.", fix="report this schedule.")


def _drop_smallest(scores: Tensor, drop: int) -> Tensor:
    """Keep-mask dropping exactly the `drop` smallest scores: a threshold (kthvalue, several times faster than
    topk on a large layer), or topk where ties at the threshold would drop more."""
    if drop <= 0:
        return torch.ones(scores.shape[0], dtype=torch.bool, device=scores.device)
    keep = scores > torch.kthvalue(scores, drop).values
    if int((~keep).sum()) != drop:
        keep = torch.ones(scores.shape[0], dtype=torch.bool, device=scores.device)
        keep[torch.topk(scores, drop, largest=False).indices] = False
    return keep


def report_markdown(run: ScheduleRun, title: str) -> str:
    """Per epoch: what fired, channels, loss, accuracies, and scheduled vs actual sparsity of each masked layer."""
    head = "| epoch | fired | channels | train loss | search-val top-1 | test top-1 | sparsity (scheduled / actual) |"
    lines = [title, "", head, "| --- | --- | --- | --- | --- | --- | --- |"]
    for report in run.epochs:
        test = f"{100 * report.test_top1:.2f}%" if report.test_top1 is not None else "-"
        sparsity = ", ".join(f"{row.layer} {row.scheduled:.3f} / {row.actual:.3f}" for row in report.layers) or "-"
        fired = "; ".join(report.fired).replace("|", "/") or "-"
        lines.append(f"| {report.epoch} | {fired} | {report.channels} | {report.train_loss:.4f} | "
                     f"{100 * report.val_top1:.2f}% | {test} | {sparsity} |")  # fmt: skip
    return "\n".join(lines) + "\n"
