"""One budget, four ways: prune only (fp32), INT8 only, prune + INT8, and the joint keep + bits search, ResNet-20 on
Fashion-MNIST (shipped base), priced by one bit-aware energy model (`energy:<preset>` scales with the bits).

    .venv/bin/python bench/one_budget.py [--budgets 0.25] [--episodes 80] [--warmup 25] [--finetune-epochs 1]
        [--cost-model energy:horowitz45] [--out bench/results/one_budget] [--figure bench/figures/joint_keep_bits.png]
    .venv/bin/python bench/one_budget.py --smoke        # the tiny smoke model, seconds: checks the bench runs

Per budget (a share of the dense fp32 energy): (a) AMC channel search priced at fp32; (b) the dense network, INT8
PTQ (ONNX Runtime QDQ); (c) AMC channel search priced at INT8 (`granularity: joint` with `bits_range: [8, 8]`: every
group's layers at w8/a8, fake-quantized while scored), then INT8 PTQ of the thinned network; (d) the joint search
(keep + weight/activation bits per group, bits in [2, 8]). Every variant gets the same fine-tune (fp32 for a-c, then
PTQ for b/c; d fine-tunes fake-quantized, straight-through). Reported per variant: the energy model's cost of what
is deployed (b/c: every conv/linear at w8/a8, the classifier included) as a share of dense fp32, whether it meets
the budget, the search-val top-1 the search saw (b: the dense network fake-quantized at 8 bits, same scorer), test
top-1 after the fine-tune (a: fp32 ONNX in ORT; b/c: the INT8 ONNX in ORT; d: the fake-quantized PyTorch network:
this CPU runs no 2-7-bit kernels), and for a-c the ORT batch-1 latency against the dense fp32 one, timed
interleaved, the median of `--latency-repeats` medians. Searches go to <out>/<budget>/<variant>/ (a finished run is
reused). The figure shows the joint search's per-layer keep ratios and bits (HAQ's figure).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.config import load_config
from amc.deliver.apply import apply
from amc.errors import UserError
from amc.graph import LayerTable
from amc.problem import Task, build_task
from amc.problem.joint import JointDecision, JointProblem, JointResult
from amc.pruning import Strategy, remove_masks_
from amc.quantize import LayerBits
from amc.quantize.fake import fake_quantize_
from amc.quantize.ptq import PtqSettings, TimingSettings, quantize_network, time_files
from amc.report.plots import plot_keep_ratios_side_by_side
from amc.search.methods import run_search
from amc.training.loop import TrainSettings, accuracy_on, train

CONFIGS = Path(__file__).parent.parent / "configs"
INT8 = 8


@dataclass(frozen=True)
class Variant:
    """One of the four ways to the budget, as the table prints it."""

    name: str
    share: float
    search_val: float
    test_top1: float
    episodes: int
    onnx: Path | None = None
    """The deployed ONNX file (fp32 for a, INT8 for b/c) timed against the dense fp32 one; None for d."""


def config_for(args: argparse.Namespace, budget: float, granularity: str, bits: tuple[int, int]) -> Any:
    overrides: dict[str, Any] = {
        "cost.model": args.cost_model, "budget.ratio": budget, "search.granularity": granularity,
        "search.bits_range": list(bits), "experiment.threads": args.threads, "experiment.seed": args.seed,
        "experiment.name": "bench-one-budget",
    }  # fmt: skip
    if args.smoke:
        overrides.update({"search.episodes": 4, "agent.warmup_episodes": 2})
        return load_config(CONFIGS / "smoke.yaml", overrides)
    overrides.update({"search.episodes": args.episodes, "agent.warmup_episodes": args.warmup})
    return load_config(CONFIGS / "methods" / "amc.yaml", overrides)


def searched(task: Task, run: Path) -> tuple[dict[str, Any], Strategy | JointResult]:
    """The task's AMC search in `run` (a finished one is reused, an interrupted one resumed)."""
    if not (run / "summary.json").exists():
        run_search(task, run, resume=(run / "episodes.csv").exists(), progress=False, log=lambda _: None)
    summary = json.loads((run / "summary.json").read_text())
    best = run / "best_strategy.json"
    return summary, JointResult.load(best) if JointResult.saved_at(best) else Strategy.load(best)


def deployed_cost(task: Task, kept: dict[int, int], bits: LayerBits | None, all_int8: bool) -> float:
    """The cost model's price of the thinned network: at `bits`, or every conv/linear at w8/a8 (`all_int8`)."""
    problem = task.problem
    table: LayerTable = problem.table
    if bits is not None:
        specs = bits.specs(table, kept)
    else:
        specs = []
        for layer in table.layers:
            spec = layer.spec
            channels = table.layer_channels(layer.index, kept)
            if channels != (spec.in_channels, spec.out_channels):
                spec = spec.with_channels(*channels)
            specs.append(spec.with_bits(INT8, INT8) if all_int8 else spec)
    return problem.cost_model.network_cost(specs)


def finetuned(model: nn.Module, task: Task, epochs: int) -> nn.Module:
    """`model` fine-tuned in place for `epochs` (the same settings for every variant), on the CPU, in eval."""
    assert task.data is not None
    if epochs:
        settings = TrainSettings(epochs=epochs, lr=0.01, augment=False)
        train(model, task.data.train, task.data.search_val, settings, progress=False, log=lambda _: None)
    return model.cpu().eval()


def ptq(model: nn.Module, task: Task, folder: Path, args: argparse.Namespace) -> Any:
    assert task.data is not None
    settings = PtqSettings(args.calibration_images)
    timing = TimingSettings(args.threads, args.batch, args.repeats)
    return quantize_network(model, task.data.input_size, task.data, folder, settings, timing, 1000)


def budget_tasks(args: argparse.Namespace, budget: float) -> dict[str, Task]:
    """The searches of one budget, built (and so checked: an infeasible budget is refused) before any runs."""
    return {
        "a": build_task(config_for(args, budget, "channel", (2, 8)), progress=False, log=lambda _: None),
        "c": build_task(config_for(args, budget, "joint", (INT8, INT8)), progress=False, log=lambda _: None),
        "d": build_task(config_for(args, budget, "joint", (2, 8)), progress=False, log=lambda _: None),
    }


def run_budget(
    args: argparse.Namespace, budget: float, tasks: dict[str, Task], out: Path, dense_int8: dict[str, Any]
) -> list[Variant]:
    """The four variants at one budget; the dense INT8 row (b) is computed once and shared between budgets."""
    joint = tasks["d"].problem
    assert isinstance(joint, JointProblem)
    dense_int8["input_size"] = tasks["d"].input_size
    dense_cost = deployed_cost(tasks["d"], {}, None, all_int8=False)
    print(f"budget {100 * budget:g}% of dense fp32 energy: {budget * dense_cost:.4g} of {dense_cost:.4g} "
          f"{joint.cost_model.unit} ({joint.cost_model.name}); problem budget {joint.budget.value:.4g}")  # fmt: skip
    variants = []
    summary, strategy = searched(tasks["a"], out / "a_prune_fp32")
    assert isinstance(strategy, Strategy)
    model = finetuned(remove_masks_(copy.deepcopy(apply(tasks["a"], strategy))), tasks["a"], args.finetune_epochs)
    result = ptq(model, tasks["a"], out / "a_prune_fp32" / "onnx", args)
    kept = strategy.kept_channels(tasks["a"].problem.table)
    share = deployed_cost(tasks["a"], kept, None, all_int8=False) / dense_cost
    variants.append(Variant("(a) prune only, fp32", share, summary["best_accuracy"], result.fp32.test_top1,
                            summary["episodes"], Path(result.float_path)))  # fmt: skip

    if "variant" not in dense_int8:
        full = {unit: JointDecision(joint.table.groups[unit].channels, INT8, INT8) for unit in joint.order}
        search_val = joint.score(full).accuracy
        model = finetuned(copy.deepcopy(joint.model).cpu(), tasks["d"], args.finetune_epochs)
        result = ptq(model, tasks["d"], out.parent / "b_int8_dense" / "onnx", args)
        share = deployed_cost(tasks["d"], {}, None, all_int8=True) / dense_cost
        dense_int8["variant"] = Variant("(b) INT8 only, dense", share, search_val, result.int8.test_top1, 0,
                                        Path(result.int8_path))  # fmt: skip
        dense_int8["dense_fp32"] = Path(result.float_path)
    variants.append(dense_int8["variant"])

    summary, found = searched(tasks["c"], out / "c_prune_int8")
    assert isinstance(found, JointResult)
    model = finetuned(remove_masks_(copy.deepcopy(apply(tasks["c"], found.strategy))), tasks["c"],
                      args.finetune_epochs)  # fmt: skip
    result = ptq(model, tasks["c"], out / "c_prune_int8" / "onnx", args)
    kept = found.strategy.kept_channels(tasks["c"].problem.table)
    share = deployed_cost(tasks["c"], kept, None, all_int8=True) / dense_cost
    variants.append(Variant("(c) prune + INT8", share, summary["best_accuracy"], result.int8.test_top1,
                            summary["episodes"], Path(result.int8_path)))  # fmt: skip

    summary, found = searched(tasks["d"], out / "d_joint")
    assert isinstance(found, JointResult)
    model = remove_masks_(copy.deepcopy(apply(tasks["d"], found.strategy)))
    model = finetuned(fake_quantize_(model, found.bits, joint.ranges), tasks["d"], args.finetune_epochs)
    assert tasks["d"].data is not None
    test = accuracy_on(model, tasks["d"].data.test).top1
    kept = found.strategy.kept_channels(joint.table)
    share = deployed_cost(tasks["d"], kept, found.bits, all_int8=False) / dense_cost
    variants.append(Variant("(d) joint keep + bits", share, summary["best_accuracy"], test, summary["episodes"]))
    plot_joint(found, out / "joint_keep_bits.png")
    print(joint_table(found))
    return variants


def plot_joint(found: JointResult, path: Path) -> None:
    """HAQ's figure: per layer, the kept share of channels and the weight / activation bits (over 8)."""
    bits = found.bits
    series = {
        "keep ratio": found.strategy.keep_ratios(),
        "weight bits / 8": {name: value / 8 for name, value in bits.weights.items()},
        "activation bits / 8": {name: value / 8 for name, value in bits.activations.items()},
    }
    plot_keep_ratios_side_by_side(series, path, "keep ratio, bits / 8", "joint search: per-layer keep and bits")


def joint_table(found: JointResult) -> str:
    lines = ["| layer | keep | kept / channels | w bits | a bits |", "| --- | ---: | ---: | ---: | ---: |"]
    for layer in found.strategy.layers:
        w, a = found.bits.weights.get(layer.name, 32), found.bits.activations.get(layer.name, 32)
        lines.append(
            f"| {layer.name} | {layer.kept / layer.channels:.3f} | {layer.kept}/{layer.channels} | {w} | {a} |"
        )
    return "\n".join(lines)


def latencies(variants: list[Variant], dense: Path, args: argparse.Namespace, input_size: Any) -> list[float]:
    """ORT batch-1 ms of the dense fp32 file and each deployable variant, timed interleaved; median of repeats."""
    paths = [dense, *(v.onnx for v in variants if v.onnx is not None)]
    timing = TimingSettings(args.threads, 1, args.repeats)
    rounds = [time_files(paths, input_size, 1, timing) for _ in range(args.latency_repeats)]
    return [statistics.median(r[i] for r in rounds) for i in range(len(paths))]


def report(budget: float, variants: list[Variant], ms: list[float], latency_share: float) -> str:
    dense_ms, timed = ms[0], iter(ms[1:])
    lines = [
        f"budget: {100 * budget:g}% of dense fp32 energy; latency check: {100 * latency_share:g}% of dense fp32 ORT "
        f"batch-1 latency = {latency_share * dense_ms:.3f} ms (dense {dense_ms:.3f} ms, taken loaded)",
        "",
        "| variant | energy (share of dense fp32) | meets energy budget | search-val top-1 | test top-1 after "
        "fine-tune | episodes | ORT b1 ms (share of dense fp32) | meets latency |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for v in variants:
        if v.onnx is not None:
            value = next(timed)
            latency = f"{value:.3f} ({value / dense_ms:.2f})"
            meets = "yes" if value <= latency_share * dense_ms else "no"
        else:
            latency, meets = "n/a (no 2-7-bit kernels)", "n/a"
        lines.append(
            f"| {v.name} | {v.share:.3f} | {'yes' if v.share <= budget + 1e-9 else 'no'} | {100 * v.search_val:.2f}% | "
            f"{100 * v.test_top1:.2f}% | {v.episodes} | {latency} | {meets} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.25], help="shares of dense fp32 energy")
    parser.add_argument("--latency-share", type=float, default=0.25, help="latency check: share of dense fp32 ms")
    parser.add_argument("--cost-model", default="energy:horowitz45")
    parser.add_argument("--episodes", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=25)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--calibration-images", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--latency-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/one_budget"))
    parser.add_argument("--figure", type=Path, default=Path("bench/figures/joint_keep_bits.png"))
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.finetune_epochs, args.calibration_images, args.repeats, args.latency_repeats = 0, 64, 3, 1
        args.out, args.figure = args.out / "smoke", args.out / "smoke" / "joint_keep_bits.png"
    torch.set_num_threads(args.threads)
    print(f"one budget, four ways: {args.cost_model}, {args.episodes} episodes per search ({args.warmup} warm-up), "
          f"fine-tune {args.finetune_epochs} epoch(s) lr 0.01, threads {args.threads}, seed {args.seed}")  # fmt: skip
    try:
        tasks = {budget: budget_tasks(args, budget) for budget in args.budgets}
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    dense_int8: dict[str, Any] = {}
    for budget in args.budgets:
        out = args.out / f"budget{budget:g}"
        variants = run_budget(args, budget, tasks[budget], out, dense_int8)
        ms = latencies(variants, dense_int8["dense_fp32"], args, dense_int8["input_size"])
        print(report(budget, variants, ms, args.latency_share))
        print()
        if budget == args.budgets[0]:
            args.figure.parent.mkdir(parents=True, exist_ok=True)
            args.figure.write_bytes((out / "joint_keep_bits.png").read_bytes())
            print(f"wrote {args.figure} (budget {budget:g})")


if __name__ == "__main__":
    main()
