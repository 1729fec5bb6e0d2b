"""Search speed: seconds per AMC episode, split into evaluation, pruning, cost queries and agent updates.

    .venv/bin/python bench/search_speed.py [--models resnet20 resnet56] [--episodes 30] [--selection lstsq]

Runs a short AMC search per model (built-in defaults: Fashion-MNIST, 50% of the ONNX Runtime LUT latency) into
bench/results/speed-<model>-<selection>/ and prints the mean split of an episode. The agent's own overhead is
everything but scoring the pruned network (cost queries + agent updates + env bookkeeping); channel pruning
(thinning, and the least-squares refit with `lstsq`) is shown on its own line. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
from pathlib import Path

from amc.config import load_config
from amc.problem import build_task
from amc.search.methods import run_search

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--selection", default="lstsq")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (idle machine expected); {args.threads} torch threads")
    print("| model | selection | s/episode | evaluate | prune | cost queries | agent updates | other | overhead* |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in args.models:
        out = RESULTS / f"speed-{model}-{args.selection}"
        shutil.rmtree(out, ignore_errors=True)
        config = load_config(None, {
            "model.name": model, "search.episodes": args.episodes, "agent.warmup_episodes": args.warmup,
            "search.selection": args.selection, "experiment.threads": args.threads,
        })  # fmt: skip
        task = build_task(config, progress=False, log=lambda _: None)
        run_search(task, out, progress=False, log=lambda _: None)
        with (out / "episodes.csv").open() as handle:
            rows = list(csv.DictReader(handle))[1:]  # the first episode pays one-off warm-up costs
        mean = {key: statistics.mean(float(row[key]) for row in rows) for key in
                ("wall_s", "eval_s", "prune_s", "cost_s", "agent_s")}  # fmt: skip
        other = mean["wall_s"] - mean["eval_s"] - mean["prune_s"] - mean["cost_s"] - mean["agent_s"]
        overhead = (mean["cost_s"] + mean["agent_s"] + other) / mean["wall_s"]
        print(
            f"| {model} | {args.selection} | {mean['wall_s']:.2f} | {mean['eval_s']:.2f} | {mean['prune_s']:.2f} | "
            f"{mean['cost_s']:.4f} | {mean['agent_s']:.3f} | {other:.3f} | {100 * overhead:.1f}% |"
        )
    print("* overhead: cost queries + agent updates + other (env steps, actor inference, logging), per episode")


if __name__ == "__main__":
    main()
