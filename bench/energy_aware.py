"""Energy-aware pruning vs AMC vs uniform at the same energy budget: ResNet-20 / Fashion-MNIST (shipped base).

    .venv/bin/python bench/energy_aware.py [--budgets 0.5 0.35] [--episodes 60 --warmup 20] [--finetune-epochs 1]
        [--cost-model energy:eyeriss] [--out DIR]
    .venv/bin/python bench/energy_aware.py --smoke      # the tiny smoke model, seconds: checks the bench runs

For each budget (a share of the dense energy by the cost model) the three methods search from their
configs/methods/*.yaml with the cost model and budget replaced (AMC with a small episode count, said on the
output), each result is fine-tuned by `amc evaluate RUN --finetune-epochs N` (the same for all) and its test top-1
reported. Columns: the energy (mJ) by the model, search-val top-1 on the scoring slice and re-ranked on the whole
search-val split, test top-1 after the fine-tune, and the search's wall time. One thread; runs go to
<out>/<budget>/<method>/ (a finished run or evaluation is reused, an interrupted search resumed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from amc.cli.main import main as amc
from amc.config import load_config
from amc.deliver.evaluate import EVALUATION_FILE
from amc.problem import build_task
from amc.search.methods import run_search

CONFIGS = Path(__file__).parent.parent / "configs"
METHODS = ("energy-aware", "amc", "uniform")


def search(method: str, budget: float, args: argparse.Namespace, run: Path) -> dict[str, Any]:
    if not (run / "summary.json").exists():
        overrides: dict[str, Any] = {
            "cost.model": args.cost_model, "budget.ratio": budget, "experiment.threads": 1,
            "search.episodes": args.episodes, "agent.warmup_episodes": args.warmup,
        }  # fmt: skip
        if args.smoke:
            config = load_config(CONFIGS / "smoke.yaml", {**overrides, "search.method": method})
        else:
            config = load_config(CONFIGS / "methods" / f"{method}.yaml", overrides)
        task = build_task(config, progress=False, log=lambda _: None)
        run_search(task, run, resume=(run / "episodes.csv").exists(), progress=False, log=lambda _: None)
    return json.loads((run / "summary.json").read_text())


def evaluate(run: Path, epochs: int) -> dict[str, Any]:
    path = run / "evaluate" / EVALUATION_FILE
    if not path.is_file():
        code = amc(["evaluate", str(run), "--finetune-epochs", str(epochs), "--no-progress", "--threads", "1"])
        if code != 0:
            raise SystemExit(f"amc evaluate {run} failed with exit code {code}")
    return json.loads(path.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.5, 0.35])
    parser.add_argument("--cost-model", default="energy:eyeriss")
    parser.add_argument("--episodes", type=int, default=60, help="AMC episodes in all, warm-up included")
    parser.add_argument("--warmup", type=int, default=20, help="AMC warm-up (random) episodes")
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, help="default bench/results/energy-aware (or -smoke)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.smoke:
        args.episodes, args.warmup = min(args.episodes, 6), min(args.warmup, 3)
    out = args.out or Path(__file__).parent / "results" / ("energy-aware-smoke" if args.smoke else "energy-aware")
    print(f"{'smoke (tiny, synthetic)' if args.smoke else 'ResNet-20 / Fashion-MNIST, shipped base'}; cost model "
          f"{args.cost_model}; AMC {args.episodes} episodes ({args.warmup} warm-up); fine-tune {args.finetune_epochs} "
          "epoch(s) by amc evaluate, the same for every method; 1 thread; wall times taken on a loaded machine",
          flush=True)  # fmt: skip
    for budget in args.budgets:
        rows = []
        for method in METHODS:
            run = out / f"{budget:g}" / method
            summary = search(method, budget, args, run)
            evaluation = evaluate(run, args.finetune_epochs)
            rows.append((method, summary, evaluation))
            print(f"  {budget:g} {method}: done ({summary['wall_s']:.0f} s search)", flush=True)
        limit = rows[0][1]["budget"]
        print(f"\nbudget {100 * budget:g}% of the dense energy: {limit['value']:.5g} of {limit['dense_cost']:.5g} mJ")
        print("| method | energy mJ | of dense | search-val top-1 (slice / whole split) | test top-1 before / after "
              "fine-tune | search s (loaded) |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        dense = rows[0][2]
        print(f"| dense | {limit['dense_cost']:.5g} | 100% | {100 * rows[0][1]['dense_accuracy']:.2f}% | "
              f"{100 * dense['dense_test_top1']:.2f}% | |")  # fmt: skip
        for method, summary, evaluation in rows:
            whole = summary.get("best_accuracy_whole_split")
            whole_text = f"{100 * whole:.2f}%" if whole is not None else "-"
            test = f"{100 * evaluation['pruned_test_top1']:.2f}% / {100 * evaluation['test_top1']:.2f}%"
            print(f"| {method} | {summary['best_cost']:.5g} | {100 * summary['best_cost'] / limit['dense_cost']:.1f}% "
                  f"| {100 * summary['best_accuracy']:.2f}% / {whole_text} | {test} | {summary['wall_s']:.0f} |",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
