"""The lottery-ticket experiment as a resumable run folder: dense training, then rounds of prune -> rewind ->
retrain, each ticket beside the same mask on a random re-initialisation (Frankle & Carbin 2019's control).

Round 0 trains the dense network for `epochs` epochs and keeps its weights after epoch `rewind_epoch` (0: the
initialisation). Round r prunes `rate` of the surviving weights of round r-1's trained ticket (amc.lottery.imp),
rewinds the survivors to the kept weights and trains epochs k..E-1 of the same LR schedule; the control gets the
same mask and the same training from a fresh initialisation. After every round the folder gets lottery.json (the
settings and rows, what a resume reads), lottery.csv, lottery.png and round_<r>.pt, all written atomically.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.data import DataBundle
from amc.errors import UserError
from amc.io import atomic_torch_save, atomic_write_json, atomic_write_text
from amc.locks import lock_folder
from amc.lottery.imp import (
    Masks,
    Segment,
    full_masks,
    prune_global,
    random_reinit_,
    rewind_,
    sparsity,
    steps_per_epoch,
    train_masked,
)
from amc.resume import refuse_changed
from amc.training.loop import TrainSettings, accuracy_on

STATE_FILE = "lottery.json"
CSV_FILE = "lottery.csv"
PLOT_FILE = "lottery.png"
REWIND_FILE = "rewind.pt"
CSV_FIELDS = ("round", "sparsity", "test_top1_ticket", "test_top1_reinit", "test_top1_dense", "val_top1_ticket",
              "val_top1_reinit")  # fmt: skip


@dataclass(frozen=True)
class LotterySettings:
    rounds: int
    """Pruning rounds after the dense round 0."""
    rate: float
    """Share of the surviving weights pruned each round (Frankle & Carbin: 0.2)."""
    rewind_epoch: int
    """Epoch k whose weights the survivors are rewound to (0: the initialisation, the original lottery ticket)."""
    epochs: int
    """Dense training epochs E; each ticket trains epochs k..E-1."""
    control: bool = False
    """Also train the random re-initialisation of each round's mask."""
    max_steps_per_epoch: int | None = None
    test_images: int | None = None
    val_images: int | None = None


@dataclass(frozen=True)
class LotteryRow:
    round: int
    sparsity: float
    test_top1_ticket: float
    test_top1_reinit: float | None
    test_top1_dense: float
    val_top1_ticket: float
    val_top1_reinit: float | None


@dataclass(frozen=True)
class LotteryResult:
    rows: tuple[LotteryRow, ...]
    ticket: nn.Module
    """The last round's trained ticket (pruned weights exactly zero)."""
    masks: Masks


def check_settings(settings: LotterySettings) -> None:
    """Refuse settings that cannot run, before any data loads (a UserError naming the flag and the fix)."""
    if settings.rounds < 1:
        raise UserError(f"--rounds is {settings.rounds}; it must be 1 or more.", fix="use e.g. --rounds 5.")
    if not 0 < settings.rate < 1:
        raise UserError(f"--rate is {settings.rate}; it must be between 0 and 1 (exclusive).",
                        fix="use e.g. --rate 0.2 (Frankle & Carbin) or 0.5.")  # fmt: skip
    if settings.epochs < 1:
        raise UserError(f"--epochs is {settings.epochs}; it must be 1 or more.", fix="use e.g. --epochs 2.")
    if not 0 <= settings.rewind_epoch < settings.epochs:
        raise UserError(
            f"--rewind-epoch {settings.rewind_epoch} is a rewind epoch beyond training: it must be at least 0 and "
            f"below --epochs {settings.epochs} (the ticket retrains epochs k..E-1).",
            fix=f"use a rewind epoch from 0 (the initialisation) to {settings.epochs - 1}, or train more epochs.",
        )
    for flag, value in (("--max-steps-per-epoch", settings.max_steps_per_epoch),
                        ("--test-images", settings.test_images), ("--val-images", settings.val_images)):  # fmt: skip
        if value is not None and value < 1:
            raise UserError(f"{flag} is {value}; it must be 1 or more.", fix=f"drop {flag} or give it 1 or more.")


def run_lottery(
    model: nn.Module,
    bundle: DataBundle,
    train: TrainSettings,
    settings: LotterySettings,
    out: str | Path,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> LotteryResult:
    """Run (or, with `resume`, continue) the experiment in folder `out` (locked); `model` is the network at its
    initialisation (it is not changed: the run works on copies). `train` gives batch size, optimiser, LR, weight
    decay, label smoothing, augmentation and seed; its `epochs` is ignored (settings.epochs rules). A resume
    refuses other settings, except more rounds, which extend a finished run."""
    check_settings(settings)
    out = Path(out)
    with lock_folder(out):
        return _run(copy.deepcopy(model), bundle, train, settings, out, resume, log)


def _job(train: TrainSettings, settings: LotterySettings) -> dict[str, Any]:
    return {"train": {**asdict(train), "epochs": None}, "lottery": asdict(settings)}


def _run(
    model: nn.Module,
    bundle: DataBundle,
    train: TrainSettings,
    settings: LotterySettings,
    out: Path,
    resume: bool,
    log: Callable[[str], None],
) -> LotteryResult:
    job = _job(train, settings)
    state_path = out / STATE_FILE
    rows: list[LotteryRow] = []
    if state_path.is_file():
        if not resume:
            raise UserError(f"{out} already holds a lottery run ({STATE_FILE}).",
                            fix="pass --resume to continue it, or choose another --out folder.")  # fmt: skip
        stored = json.loads(state_path.read_text())
        fix = "resume with the old values (more --rounds is allowed), or use another --out folder."
        refuse_changed(f"lottery run {out}", stored["settings"], job, ignore=("lottery.rounds",), fix=fix)
        rows = [LotteryRow(**row) for row in stored["rows"]]
    segment = Segment(settings.rewind_epoch, settings.epochs, settings.epochs,
                      steps_per_epoch(bundle.train, train.batch_size, settings.max_steps_per_epoch))  # fmt: skip
    score = _scorer(bundle, settings)
    if rows:
        rewind_state = torch.load(out / REWIND_FILE, map_location="cpu", weights_only=True)
        last = torch.load(out / f"round_{len(rows) - 1}.pt", map_location="cpu", weights_only=True)
        masks: Masks = last["masks"]
        model.load_state_dict(last["ticket"])
        log(f"resuming {out} after round {len(rows) - 1}")
    else:
        masks = full_masks(model)
        kept: dict[str, dict[str, torch.Tensor]] = {}

        def keep(epoch: int, network: nn.Module) -> None:
            if epoch == settings.rewind_epoch:
                kept["state"] = copy.deepcopy(network.state_dict())

        keep(0, model)
        loss = train_masked(model, masks, bundle.train, train, Segment(0, settings.epochs, settings.epochs,
                            segment.steps_per_epoch), train.augment, keep)  # fmt: skip
        rewind_state = kept["state"]
        atomic_torch_save(out / REWIND_FILE, rewind_state)
        test, val = score(model)
        rows.append(LotteryRow(0, 0.0, test, None, test, val, None))
        _save_round(out, job, rows, masks, model, None)
        log(f"round 0 (dense): train loss {loss:.4f}, test top-1 {100 * test:.2f}%, search-val {100 * val:.2f}%")
    dense = rows[0].test_top1_dense
    for round_index in range(len(rows), settings.rounds + 1):
        masks = prune_global(model, masks, settings.rate)
        rewind_(model, rewind_state, masks)
        train_masked(model, masks, bundle.train, train, segment, train.augment)
        test, val = score(model)
        control = None
        if settings.control:
            control = copy.deepcopy(model)
            random_reinit_(control, masks, train.seed + 1000 * round_index)
            train_masked(control, masks, bundle.train, train, segment, train.augment)
        test_reinit, val_reinit = score(control) if control is not None else (None, None)
        rows.append(LotteryRow(round_index, sparsity(masks), test, test_reinit, dense, val, val_reinit))
        _save_round(out, job, rows, masks, model, control)
        reinit_text = f", random reinit {100 * test_reinit:.2f}%" if test_reinit is not None else ""
        log(f"round {round_index}: sparsity {100 * rows[-1].sparsity:.2f}%, ticket test top-1 {100 * test:.2f}%"
            f"{reinit_text} (dense {100 * dense:.2f}%)")  # fmt: skip
    return LotteryResult(tuple(rows), model, masks)


def _scorer(bundle: DataBundle, settings: LotterySettings) -> Callable[[nn.Module], tuple[float, float]]:
    def score(model: nn.Module) -> tuple[float, float]:
        test = accuracy_on(model, bundle.test, limit=settings.test_images).top1
        val = accuracy_on(model, bundle.search_val, limit=settings.val_images).top1
        return test, val

    return score


def _save_round(
    out: Path, job: dict[str, Any], rows: list[LotteryRow], masks: Masks, ticket: nn.Module, reinit: nn.Module | None
) -> None:
    """This round's checkpoint first, then the table that says the round is done (a kill in between redoes it)."""
    checkpoint = {"masks": masks, "ticket": ticket.state_dict()}
    if reinit is not None:
        checkpoint["reinit"] = reinit.state_dict()
    atomic_torch_save(out / f"round_{rows[-1].round}.pt", checkpoint)
    atomic_write_text(out / CSV_FILE, csv_text(rows))
    write_plot(out / PLOT_FILE, rows)
    atomic_write_json(out / STATE_FILE, {"_type": "amc.LotteryRun", "_version": 1, "settings": job,
                                         "rows": [asdict(row) for row in rows]})  # fmt: skip


def csv_text(rows: list[LotteryRow] | tuple[LotteryRow, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in rows:
        writer.writerow(["" if value is None else (f"{value:.6f}" if isinstance(value, float) else value)
                         for value in (getattr(row, field) for field in CSV_FIELDS)])  # fmt: skip
    return buffer.getvalue()


def write_plot(path: Path, rows: list[LotteryRow] | tuple[LotteryRow, ...]) -> None:
    """Test top-1 vs the share of weights remaining (log x, falling from 100% as in Frankle & Carbin's figures):
    ticket, random reinit and the dense network's line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    remaining = [100 * (1 - row.sparsity) for row in rows]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(remaining, [100 * row.test_top1_ticket for row in rows], "o-", label="winning ticket (rewound)")
    reinit = [(x, 100 * row.test_top1_reinit) for x, row in zip(remaining, rows) if row.test_top1_reinit is not None]
    if reinit:
        axes.plot(*zip(*reinit), "s--", label="random reinit")
    axes.axhline(100 * rows[0].test_top1_dense, color="grey", linestyle=":", label="dense")
    axes.set_xscale("log")
    axes.invert_xaxis()
    axes.set_xlabel("weights remaining (%)")
    axes.set_ylabel("test top-1 (%)")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)
