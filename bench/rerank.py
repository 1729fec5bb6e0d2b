"""Re-ranking before choosing: does re-scoring the top candidates on the whole search-val split pick better?

    .venv/bin/python bench/rerank.py [--model resnet20] [--episodes 60] [--seeds 0 1 2] [--budget 0.5]
        [--cost macs] [--top 5]

Runs a random search per seed (built-in defaults otherwise: Fashion-MNIST, the shipped base model, 1,000
search-val images per candidate, BN re-estimation, least-squares selection) into bench/results/rerank-*/, then
prints, per seed, the search's best by its slice score and the re-ranked choice: slice score, whole-split score,
and test top-1 (BN re-estimated, no fine-tune) of each. Test top-1 is the independent judge: the slice's maximum
is biased upward, and the question is whether the whole split picks a variant that is better on unseen images.
Accuracy only: the machine's load does not change these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
from pathlib import Path

from amc.config import load_config
from amc.problem import build_task
from amc.problem.scoring import SearchValScorer
from amc.pruning import Strategy
from amc.search.methods import run_search

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=0.5)
    parser.add_argument("--cost", default="macs")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.model}, random search, {args.episodes} episodes, "
          f"{args.cost} budget {args.budget}, top {args.top}")  # fmt: skip
    print("| seed | slice best (episode) | slice | whole split | test | re-ranked (episode) | slice | whole | test |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    gains = []
    for seed in args.seeds:
        out = RESULTS / f"rerank-{args.model}-{seed}"
        shutil.rmtree(out, ignore_errors=True)
        overrides = {
            "model.name": args.model, "search.method": "random", "search.episodes": args.episodes,
            "budget.ratio": args.budget, "cost.model": args.cost, "experiment.seed": seed,
            "experiment.threads": args.threads, "search.rerank_top": args.top,
        }  # fmt: skip
        task = build_task(load_config(None, overrides), progress=False, log=lambda _: None)
        run_search(task, out, progress=False, log=lambda _: None)
        summary = json.loads((out / "summary.json").read_text())
        ranking = summary["rerank"]
        problem, data = task.problem, task.data
        assert data is not None and isinstance(problem.scorer, SearchValScorer)
        test = SearchValScorer(problem.scorer.on_whole(data.test).val_batches, problem.scorer.bn_batches)
        first, chosen = ranking["candidates"][0], ranking["candidates"][ranking["chosen"]]
        kept_first = out / ("best_by_search_score_strategy.json" if ranking["chosen"] else "best_strategy.json")
        tops = []
        for path in (kept_first, out / "best_strategy.json"):
            kept = Strategy.load(path).kept_channels(problem.table)
            tops.append(test(problem.apply({unit: kept[unit] for unit in problem.order})))
        gains.append(100 * (tops[1] - tops[0]))
        print(
            f"| {seed} | {first['episode']} | {100 * first['search_accuracy']:.2f} | {100 * first['accuracy']:.2f} | "
            f"{100 * tops[0]:.2f} | {chosen['episode']} | {100 * chosen['search_accuracy']:.2f} | "
            f"{100 * chosen['accuracy']:.2f} | {100 * tops[1]:.2f} |"
        )
    print(f"test top-1 of the re-ranked choice minus the slice's best: mean {statistics.mean(gains):+.2f} pt over "
          f"{len(gains)} seeds ({', '.join(f'{g:+.2f}' for g in gains)})")  # fmt: skip


if __name__ == "__main__":
    main()
