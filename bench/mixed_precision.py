"""Mixed precision under a size budget: the AMC agent and random search (HAQ-style per-layer weight and
activation bits) against uniform 8-bit and 4-bit, ResNet-20 / Fashion-MNIST, `cost.model: size` (weight bytes).

    .venv/bin/python bench/mixed_precision.py [--budget 0.15] [--episodes 300] [--warmup 100] [--seed 0]
        [--out bench/logs/mixed_precision] [--set search.eval_images=1000 ...]    # any config key
    .venv/bin/python bench/mixed_precision.py --smoke     # the tiny smoke model, seconds: checks the bench runs

The budget is a share of the float32 weight bytes (uniform 8-bit is 25% of them, 4-bit 12.5%). Each search goes to
<out>/<method>/ (a finished run is reused, an interrupted one resumed); the uniform variants are scored by the same
problem (fake-quantized, BN re-estimated, same search-val images). Prints and writes <out>/mixed_precision.md and
.json (search-val top-1, size, whether it meets the budget, mean bits) and <out>/plots/per_layer_bits.png (each
method's best per-layer bits). No fine-tuning: these are post-training (calibrated) accuracies.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from amc.config import load_config, parse_override
from amc.problem import BitPair, BitsProblem, Task, build_task
from amc.quantize import LayerBits
from amc.report.plots import plot_keep_ratios_side_by_side
from amc.search.methods import run_search

CONFIGS = Path(__file__).parent.parent / "configs"
METHODS = ("amc", "random")
UNIFORM = (8, 4)


def base_config(args: argparse.Namespace) -> Any:
    overrides: dict[str, Any] = {
        "cost.model": "size", "search.granularity": "bits", "budget.ratio": args.budget,
        "experiment.seed": args.seed, "experiment.threads": 1, "experiment.name": "bench-mixed-precision",
    }  # fmt: skip
    if args.smoke:
        overrides.update({"search.episodes": 4, "agent.warmup_episodes": 2})
        return load_config(CONFIGS / "smoke.yaml", {**overrides, **args.extra})
    overrides.update({"search.episodes": args.episodes, "agent.warmup_episodes": args.warmup})
    return load_config(CONFIGS / "methods" / "amc.yaml", {**overrides, **args.extra})


def searched(task: Task, method: str, out: Path) -> tuple[dict[str, Any], LayerBits]:
    """The method's search on the task's problem (reused when finished, resumed when interrupted)."""
    run = out / method
    if not (run / "summary.json").exists():
        config = replace(task.config, search=replace(task.config.search, method=method))
        run_search(replace(task, config=config), run, resume=(run / "episodes.csv").exists(), progress=False,
                   log=lambda _: None)  # fmt: skip
    return json.loads((run / "summary.json").read_text()), LayerBits.load(run / "best_bits.json")


def row(name: str, accuracy: float, cost: float, problem: BitsProblem, bits: LayerBits | None) -> dict[str, Any]:
    weights = list(bits.weights.values()) if bits else [32]
    activations = list(bits.activations.values()) if bits else [32]
    return {
        "variant": name, "accuracy": accuracy, "size_bytes": cost, "share_of_fp32": cost / problem.dense_cost,
        "meets_budget": cost <= problem.budget.value, "mean_weight_bits": statistics.mean(weights),
        "mean_activation_bits": statistics.mean(activations),
    }  # fmt: skip


def table(rows: list[dict[str, Any]], problem: BitsProblem) -> str:
    budget = problem.budget
    lines = [
        f"budget {budget.value:.0f} bytes of weights ({100 * budget.ratio:.1f}% of float32's {budget.dense_cost:.0f}), "
        "cost model size; post-training (no fine-tune)",
        "",
        "| variant | search-val top-1 (%) | weight bytes | share of fp32 | meets budget | mean w bits | mean a bits |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {100 * r['accuracy']:.2f} | {r['size_bytes']:.0f} | {r['share_of_fp32']:.3f} | "
            f"{'yes' if r['meets_budget'] else 'no'} | {r['mean_weight_bits']:.2f} | {r['mean_activation_bits']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=0.15, help="share of the float32 weight bytes")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/logs/mixed_precision"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    args.extra = dict(parse_override(text) for text in args.overrides)
    torch.set_num_threads(1)
    out = args.out / "smoke" if args.smoke else args.out
    task = build_task(base_config(args), progress=False, log=lambda _: None)
    problem = task.problem
    assert isinstance(problem, BitsProblem)
    rows = [row("float32", problem.accuracy(copy.deepcopy(problem.model)), problem.dense_cost, problem, None)]
    for bits in UNIFORM:
        outcome = problem.score({unit: BitPair(bits, bits) for unit in problem.order})
        rows.append(row(f"uniform {bits}-bit", outcome.accuracy, outcome.cost, problem, problem.result(
            outcome.decisions, problem.metadata)))  # fmt: skip
    best: dict[str, LayerBits] = {}
    for method in METHODS:
        summary, best[method] = searched(task, method, out)
        rows.append(row(f"{method} (mixed)", summary["best_accuracy"], summary["best_cost"], problem, best[method]))
    text = table(rows, problem)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mixed_precision.md").write_text(text + "\n")
    (out / "mixed_precision.json").write_text(json.dumps({"rows": rows, "overrides": args.extra}, indent=2) + "\n")
    shares = {f"{method} {kind}": {name: value / 8 for name, value in per_layer.items()}
              for method, bits in best.items()
              for kind, per_layer in (("weights", bits.weights), ("activations", bits.activations))}  # fmt: skip
    plot_keep_ratios_side_by_side(shares, out / "plots" / "per_layer_bits.png", "bits / 8",
                                  "per-layer bits of the best mixed-precision result")  # fmt: skip
    print(f"wrote {out / 'mixed_precision.md'} and {out / 'plots' / 'per_layer_bits.png'}")


if __name__ == "__main__":
    main()
