"""One search, every budget: a budget-conditioned AMC policy's front vs uniform, vs per-budget AMC runs, and
transferred to ResNet-56.

    .venv/bin/python bench/pareto.py [--episodes 150] [--warmup 50] [--budgets 0.3,0.4,0.5,0.6,0.7] [--refine 2]
        [--fixed 0.5,0.3] [--transfer resnet56] [--cost macs] [--threads 1]

ResNet-20 on Fashion-MNIST (the shipped base model, built-in defaults otherwise: 1,000 search-val images per
episode, BN re-estimation, least-squares selection). One AMC search with agent.budget_range [0.3, 0.8] (seed 0),
then `amc pareto` at each budget (greedy + --refine exploration episodes, re-ranked on the whole search-val split)
against uniform at the same budgets; then the same policy applied greedily to --transfer (its shipped base
model) against uniform there; then separate fixed-budget AMC searches with the same episodes at --fixed budgets
(re-ranked the same way, search.rerank_top 5). Every accuracy is search-val (the whole split, 5,000 images),
BN re-estimated, no fine-tune. Results in bench/results/pareto-*/; the figure in bench/figures/pareto.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from amc.config import load_config
from amc.problem import build_task
from amc.search.methods import run_search
from amc.search.pareto import ParetoRow, parse_budgets, plot_front, run_pareto

RESULTS = Path(__file__).parent / "results"
FIGURES = Path(__file__).parent / "figures"


def _quiet(_: str) -> None:
    pass


def _table(rows: list[ParetoRow], title: str) -> None:
    print(f"\n{title}")
    print("| budget | policy share | policy acc | source | uniform share | uniform acc | policy - uniform |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row.budget:.2f} | {row.share_of_dense:.3f} | {100 * row.accuracy:.2f}% | {row.source} | "
              f"{row.uniform_share:.3f} | {100 * row.uniform_accuracy:.2f}% | "
              f"{100 * (row.accuracy - row.uniform_accuracy):+.2f} pt |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--episodes", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--budgets", default="0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--refine", type=int, default=2)
    parser.add_argument("--fixed", default="0.5,0.3", help="budgets of separate fixed-budget AMC runs ('' for none)")
    parser.add_argument("--transfer", default="resnet56", help="network to apply the policy to ('' for none)")
    parser.add_argument("--cost", default="macs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    budgets = parse_budgets(args.budgets)
    base = {
        "model.name": args.model, "cost.model": args.cost, "experiment.threads": args.threads,
        "search.episodes": args.episodes, "agent.warmup_episodes": args.warmup, "budget.ratio": 0.5,
    }  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} (taken loaded; times not meaningful); {args.model}, fashion-mnist, "
          f"{args.cost}, {args.episodes} episodes ({args.warmup} warm-up) per search, {args.threads} thread(s); "
          "accuracy = whole search-val split, BN re-estimated, no fine-tune", flush=True)  # fmt: skip

    run = RESULTS / f"pareto-{args.model}-conditioned"
    shutil.rmtree(run, ignore_errors=True)
    config = load_config(None, {**base, "agent.budget_range": [0.3, 0.8]})
    tick = time.perf_counter()
    run_search(build_task(config, progress=False, log=_quiet), run, progress=False, log=_quiet)
    summary = json.loads((run / "summary.json").read_text())
    print(f"conditioned search: {args.episodes} episodes in {time.perf_counter() - tick:.0f} s (loaded); "
          f"{summary['conditioned']}", flush=True)  # fmt: skip
    policy = run / "agent" / "agent.pt"
    task = build_task(config, progress=False, log=_quiet)
    rows = run_pareto(task, policy, config.agent, budgets, run / "pareto", args.refine, progress=False, log=_quiet)
    _table(rows, f"{args.model}: one conditioned policy (greedy + {args.refine} refine episodes per budget) vs uniform")

    fixed: list[tuple[float, float]] = []
    if args.transfer:
        target = load_config(None, {**base, "model.name": args.transfer, "agent.budget_range": [0.3, 0.8]})
        target_task = build_task(target, progress=False, log=_quiet)
        out = run / f"transfer-{args.transfer}"
        moved = run_pareto(target_task, policy, config.agent, budgets, out, 0, progress=False, log=_quiet)
        _table(moved, f"transfer: the {args.model} policy applied greedily to {args.transfer} vs uniform")
    for ratio in parse_budgets(args.fixed) if args.fixed else ():
        out = RESULTS / f"pareto-{args.model}-fixed-{ratio}"
        shutil.rmtree(out, ignore_errors=True)
        fixed_config = load_config(None, {**base, "budget.ratio": ratio})
        run_search(build_task(fixed_config, progress=False, log=_quiet), out, progress=False, log=_quiet)
        result = json.loads((out / "summary.json").read_text())
        accuracy = result.get("best_accuracy_whole_split", result["best_accuracy"])
        share = result["best_cost"] / result["budget"]["dense_cost"]
        fixed.append((share, accuracy))
        policy_row = next(row for row in rows if abs(row.budget - ratio) < 1e-9) if ratio in budgets else None
        versus = f"; conditioned policy {100 * policy_row.accuracy:.2f}%" if policy_row else ""
        print(f"\nfixed-budget AMC at {ratio}: {args.episodes} episodes, best {100 * accuracy:.2f}% (whole split) at "
              f"{share:.3f} of dense{versus}", flush=True)  # fmt: skip
    plot_front(rows, FIGURES / "pareto.png", f"{args.model}, {args.cost}: one conditioned policy vs uniform",
               {"fixed-budget AMC": fixed} if fixed else None)  # fmt: skip
    print(f"\nfigure: {FIGURES / 'pareto.png'}")


if __name__ == "__main__":
    main()
