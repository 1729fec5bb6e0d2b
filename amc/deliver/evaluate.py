"""`amc evaluate`: from a search's strategy to a fine-tuned, measured and exported network.

Apply the strategy to the base checkpoint (`amc.apply`), fine-tune it on the training split (checkpointed each
epoch; running the same command again resumes), score it once on the test set, and measure what a user deploys:
MACs, parameters, cost by the run's cost model (and energy where the cost model prices it), and end-to-end latency
on this machine in PyTorch, ONNX Runtime (and OpenVINO where installed) at batch 1 and at a throughput batch, dense
beside pruned. When the search priced with a measured LUT, the exported network is also timed on the LUT's runtime
and checked against the search's budget (`amc.deliver.deployed`). Writes the fine-tuned model (`amc.export`) and
`evaluation.json` / `evaluation.md` into the output folder.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from amc.data import DataBundle
from amc.deliver.apply import apply, as_schedule
from amc.deliver.deployed import Verdict, check_budget, lut_runtime, verdict_from_dict
from amc.deliver.export import export
from amc.deliver.sources import LatencySettings
from amc.errors import UserError
from amc.io import atomic_write_json, atomic_write_text
from amc.optional import installed
from amc.problem import Task
from amc.pruning import remove_masks_
from amc.report.tables import markdown_table
from amc.resume import refuse_changed
from amc.schedule import Schedule, summarize
from amc.training.loop import EpochRecord, TrainSettings, accuracy_on, train
from hwmodel import CostModel, LayerSpec
from hwmodel.lut.backends import create_backend

EVALUATION_FILE = "evaluation.json"
STATE_FILE = "finetune.state.pt"
SETTINGS_FILE = "finetune.json"


@dataclass(frozen=True)
class LatencyRow:
    backend: str
    batch: int
    threads: int
    dense_ms: float
    pruned_ms: float

    @property
    def speedup(self) -> float:
        return self.dense_ms / self.pruned_ms


@dataclass(frozen=True)
class Int8Row:
    """One network (dense or pruned) as a float32 ONNX file beside its INT8 QDQ file (`amc evaluate --int8`)."""

    network: str
    fp32_top1: float
    fp32_top5: float
    int8_top1: float
    int8_top5: float
    fp32_bytes: int
    int8_bytes: int
    fp32_batch1_ms: float
    int8_batch1_ms: float
    fp32_batch_ms: float
    int8_batch_ms: float
    batch: int
    threads: int

    def lines(self) -> list[list[str]]:
        """Table rows: INT8 accuracy, size and ONNX Runtime latency beside float32."""
        where = f"ONNX Runtime, {self.threads} thread(s)"
        return [
            [f"{self.network} INT8 test top-1 / top-5", f"{_pct(self.fp32_top1)} / {_pct(self.fp32_top5)}",
             f"{_pct(self.int8_top1)} / {_pct(self.int8_top5)}", f"{100 * (self.int8_top1 - self.fp32_top1):+.2f} pt"],
            [f"{self.network} INT8 file KiB", f"{self.fp32_bytes / 1024:,.1f}", f"{self.int8_bytes / 1024:,.1f}",
             f"{self.fp32_bytes / self.int8_bytes:.2f}x smaller"],
            [f"{self.network} INT8 latency ms ({where}, batch 1)", f"{self.fp32_batch1_ms:.3f}",
             f"{self.int8_batch1_ms:.3f}", f"{self.fp32_batch1_ms / self.int8_batch1_ms:.2f}x faster"],
            [f"{self.network} INT8 latency ms ({where}, batch {self.batch})", f"{self.fp32_batch_ms:.3f}",
             f"{self.int8_batch_ms:.3f}", f"{self.fp32_batch_ms / self.int8_batch_ms:.2f}x faster"],
        ]  # fmt: skip


Int8Measure = Callable[[Mapping[str, nn.Module], DataBundle, Path], tuple[Int8Row, ...]]
"""Quantizes each named float network to INT8 into a folder and measures it (the CLI passes `amc.quantize`'s)."""


@dataclass(frozen=True)
class Evaluation:
    """A fine-tuned pruned network beside its dense base model, as `evaluation.json` holds it."""

    schedule: str
    model: str
    dataset: str
    test_top1: float
    test_top5: float
    dense_test_top1: float
    dense_test_top5: float
    pruned_test_top1: float
    """Test top-1 right after pruning (and BN re-estimation), before fine-tuning."""
    test_images: int
    macs: int
    dense_macs: int
    ideal_macs: float
    """MACs a zero-skipping accelerator performs: each layer's MACs times its weight density."""
    params: int
    dense_params: int
    nonzero_params: float
    cost_model: str
    cost_unit: str
    cost: float
    dense_cost: float
    energy_mj: float | None
    dense_energy_mj: float | None
    latency: tuple[LatencyRow, ...]
    finetune: TrainSettings
    epochs: tuple[EpochRecord, ...]
    finetune_s: float
    budget_check: Verdict | None = None
    """The search's budget checked on the deployed network (None in files written before it was recorded)."""
    int8: tuple[Int8Row, ...] = ()
    """INT8 figures of the dense and pruned networks (`--int8`), float32 beside INT8; empty when not asked."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        return cls(**{
            **data,
            "latency": tuple(LatencyRow(**row) for row in data["latency"]),
            "finetune": TrainSettings(**data["finetune"]),
            "epochs": tuple(EpochRecord(**record) for record in data["epochs"]),
            "budget_check": verdict_from_dict(data.get("budget_check")),
            "int8": tuple(Int8Row(**row) for row in data.get("int8", ())),
        })  # fmt: skip

    def table(self) -> str:
        """Dense vs pruned, one row per figure, as Markdown."""
        rows = [
            ["test top-1", _pct(self.dense_test_top1), _pct(self.test_top1),
             f"{100 * (self.test_top1 - self.dense_test_top1):+.2f} pt"],
            ["test top-5", _pct(self.dense_test_top5), _pct(self.test_top5),
             f"{100 * (self.test_top5 - self.dense_test_top5):+.2f} pt"],
            ["MACs", f"{self.dense_macs:,}", f"{self.macs:,}", f"{self.dense_macs / self.macs:.2f}x fewer"],
            ["params", f"{self.dense_params:,}", f"{self.params:,}", f"{self.dense_params / self.params:.2f}x fewer"],
            [f"cost ({self.cost_unit}, {self.cost_model})", f"{self.dense_cost:.4g}", f"{self.cost:.4g}",
             f"{self.cost / self.dense_cost:.3f} of dense"],
        ]  # fmt: skip
        if self.ideal_macs < self.macs:
            rows.append(["ideal MACs (zero-skipping)", f"{self.dense_macs:,}", f"{self.ideal_macs:,.0f}",
                         f"{self.dense_macs / self.ideal_macs:.2f}x fewer"])  # fmt: skip
            rows.append(["non-zero params", f"{self.dense_params:,}", f"{self.nonzero_params:,.0f}",
                         f"{self.dense_params / self.nonzero_params:.2f}x fewer"])  # fmt: skip
        if self.energy_mj is not None and self.dense_energy_mj is not None:
            rows.append(["energy (mJ)", f"{self.dense_energy_mj:.4g}", f"{self.energy_mj:.4g}",
                         f"{self.energy_mj / self.dense_energy_mj:.3f} of dense"])  # fmt: skip
        for row in self.latency:
            where = f"{row.backend}, batch {row.batch}, {row.threads} thread(s)"
            if row.batch == 1:
                rows.append([f"latency ms ({where})", f"{row.dense_ms:.3f}", f"{row.pruned_ms:.3f}",
                             f"{row.speedup:.2f}x faster"])  # fmt: skip
            else:
                dense, pruned = 1000 * row.batch / row.dense_ms, 1000 * row.batch / row.pruned_ms
                rows.append([f"images/s ({where})", f"{dense:,.0f}", f"{pruned:,.0f}", f"{row.speedup:.2f}x more"])
        int8 = [line for row in self.int8 for line in row.lines()]
        head = (f"{self.model} on {self.dataset}: {self.schedule}, fine-tuned {self.finetune.epochs} epoch(s) "
                f"({self.finetune.optimizer}, lr {self.finetune.lr}) in {self.finetune_s:.0f} s; test set "
                f"{self.test_images} images (top-1 {_pct(self.pruned_test_top1)} before fine-tuning)")  # fmt: skip
        check = f"\n\n{self.budget_check.line()}" if self.budget_check else ""
        int8_table = "\n\n" + markdown_table(["", "fp32", "int8", "change"], int8) if int8 else ""
        return head + "\n\n" + markdown_table(["", "dense", "pruned", "change"], rows) + int8_table + check


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def read_evaluation(folder: Path) -> Evaluation | None:
    path = Path(folder) / EVALUATION_FILE
    return Evaluation.from_dict(json.loads(path.read_text())) if path.is_file() else None


def finetune_settings(task: Task) -> TrainSettings:
    """The config's `finetune:` section as training settings (seeded by experiment.seed)."""
    section = task.config.finetune
    return TrainSettings(
        epochs=section.epochs, batch_size=section.batch_size,
        optimizer=section.optimizer, lr=section.lr, weight_decay=section.weight_decay, augment=False,
        seed=task.config.experiment.seed,
    )  # fmt: skip


def evaluate_schedule(
    task: Task,
    source: Schedule | Path,
    out: Path,
    settings: TrainSettings,
    latency: LatencySettings = LatencySettings(),
    onnx: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
    int8: Int8Measure | None = None,
) -> Evaluation:
    """Apply, fine-tune (resuming from `out` if it holds a checkpoint of the same job), test, measure, export;
    with `int8`, also quantize the dense and the pruned network (into OUT/int8) and measure them."""
    bundle = task.data
    if bundle is None:
        raise UserError("evaluation needs the configured data.", fix="build the task with build_task(config).")
    problem = task.problem
    table, cost_model = problem.table, problem.cost_model
    schedule = as_schedule(source, table)
    out.mkdir(parents=True, exist_ok=True)
    _check_resumable(out, schedule, settings)
    batch = task.config.data.batch_size
    pruned = apply(task, schedule)
    amp = task.config.experiment.amp  # the network is on the task's device (experiment.device)
    pruned_top1 = accuracy_on(pruned, bundle.test, batch, amp=amp).top1
    history = train(pruned, bundle.train, bundle.search_val, settings, state_path=out / STATE_FILE,
                    progress=progress, log=log, val_images=task.config.finetune.val_images, amp=amp)  # fmt: skip
    final = accuracy_on(pruned, bundle.test, batch, amp=amp)
    dense = accuracy_on(problem.model, bundle.test, batch, amp=amp)
    exported = export(pruned, out, schedule, task.input_size, task.config.model.name, onnx=onnx)
    summary = summarize(schedule, table, problem.model)
    kept = schedule.kept_channels(table)
    specs = schedule.densities.specs(table, kept) if schedule.densities else table.specs(kept)
    dense_specs = table.specs()
    plain, cost = remove_masks_(copy.deepcopy(pruned)), cost_model.network_cost(specs)
    check = check_budget(cost_model, problem.budget, cost, problem.model, plain, task.input_size, exported.onnx,
                         latency.tolerance, latency.repeats)  # fmt: skip
    evaluation = Evaluation(
        schedule=str(source) if isinstance(source, Path) else "schedule", model=task.config.model.name,
        dataset=task.dataset, test_top1=final.top1, test_top5=final.top5, dense_test_top1=dense.top1,
        dense_test_top5=dense.top5, pruned_test_top1=pruned_top1, test_images=final.images,
        macs=summary.dense_macs, dense_macs=summary.original_macs, ideal_macs=summary.ideal_macs,
        params=summary.dense_params, dense_params=summary.original_params, nonzero_params=summary.ideal_params,
        cost_model=cost_model.name, cost_unit=cost_model.unit, cost=cost,
        dense_cost=cost_model.network_cost(dense_specs), energy_mj=energy_mj(cost_model, specs),
        dense_energy_mj=energy_mj(cost_model, dense_specs),
        latency=measure_latencies(problem.model, plain, task.input_size, latency, lut_runtime(cost_model)),
        finetune=settings, epochs=history.epochs, finetune_s=sum(record.seconds for record in history.epochs),
        budget_check=check,
        int8=int8({"dense": problem.model, "pruned": plain}, bundle, out / "int8") if int8 else (),
    )  # fmt: skip
    atomic_write_json(out / EVALUATION_FILE, evaluation.to_dict())
    atomic_write_text(out / "evaluation.md", evaluation.table() + "\n")
    log(evaluation.table())
    log(f"wrote {exported.weights}" + (f", {exported.onnx}" if exported.onnx else "") + f", {exported.schedule_yaml}")
    return evaluation


def _check_resumable(out: Path, schedule: Schedule, settings: TrainSettings) -> None:
    """A checkpoint in `out` is resumed only if it fine-tunes the same schedule with the same settings."""
    job = {"schedule": schedule.to_dict(), "settings": asdict(settings)}
    path = out / SETTINGS_FILE
    if (out / STATE_FILE).is_file() and path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("schedule") != job["schedule"]:
            raise UserError(
                f"{out} holds a fine-tuning checkpoint of another schedule.",
                fix=f"use another --out, or delete {out / STATE_FILE} to start over.",
            )
        refuse_changed(
            f"the fine-tuning checkpoint in {out}", {"finetune": stored.get("settings", {})},
            {"finetune": job["settings"]}, fix=f"use another --out, or delete {out / STATE_FILE} to start over.",
        )  # fmt: skip
    atomic_write_json(path, job)


def energy_mj(cost_model: CostModel, specs: Sequence[LayerSpec]) -> float | None:
    """Energy of the network where the cost model knows it (an energy model, or one with `layer_energy_mj`)."""
    if cost_model.metric == "energy":
        return cost_model.network_cost(specs)
    per_layer = getattr(cost_model, "layer_energy_mj", None)
    return sum(per_layer(spec) for spec in specs) if per_layer else None


def measure_latencies(
    dense: nn.Module,
    pruned: nn.Module,
    input_size: tuple[int, int, int],
    settings: LatencySettings,
    lut: tuple[str, int] | None = None,
) -> tuple[LatencyRow, ...]:
    """End-to-end latency, dense beside pruned, in ONNX Runtime, PyTorch eager and OpenVINO (where installed), and
    on the run's LUT runtime at its threads (`lut`: what the search priced), at batch 1 and `settings.batch`;
    dense and pruned are timed interleaved so a slow spell of the machine does not favour either."""
    runs = [("onnxruntime", settings.threads), ("torch", settings.threads)]
    if installed("openvino"):
        runs.append(("openvino", settings.threads))
    if lut is not None and lut not in runs:
        runs.append(lut)
    rows = []
    for name, threads in runs:
        backend = create_backend(name, threads=threads, repeats=settings.repeats)
        for batch in (1, settings.batch):
            shape = (batch, *input_size)
            timed = backend.measure_networks([dense, pruned], shape)
            dense_ms, pruned_ms = (m.median_ms for m in timed)
            rows.append(LatencyRow(backend.name, batch, threads, dense_ms, pruned_ms))
    return tuple(rows)
