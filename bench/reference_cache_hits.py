"""How often the least-squares refit's reference side must be recorded afresh in an AMC search.

    .venv/bin/python bench/reference_cache_hits.py [--models resnet20 resnet56] [--episodes 20] [--warmup 10]

Runs a short AMC search per model (built-in defaults, `lstsq` selection) into bench/results/cache-hits-<model>/
and prints how many forward passes of the base network the search's `ReferenceCache` ran, against the thinnings
it refit (episodes plus re-ranked candidates). A count, not a timing: it does not need an idle machine.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

from amc.config import load_config
from amc.problem import build_task
from amc.problem.channel import ChannelProblem
from amc.search.methods import run_search

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    print("| model | episodes | record passes of the base network |")
    print("| --- | ---: | ---: |")
    for model in args.models:
        out = RESULTS / f"cache-hits-{model}"
        shutil.rmtree(out, ignore_errors=True)
        config = load_config(None, {
            "model.name": model, "search.episodes": args.episodes, "agent.warmup_episodes": args.warmup,
            "experiment.threads": 1,
        })  # fmt: skip
        task = build_task(config, progress=False, log=lambda _: None)
        run_search(task, out, progress=False, log=lambda _: None)
        assert isinstance(task.problem, ChannelProblem)
        with (out / "episodes.csv").open() as handle:
            episodes = sum(1 for _ in csv.DictReader(handle))
        print(f"| {model} | {episodes} | {task.problem._reference.forward_passes} |", flush=True)


if __name__ == "__main__":
    main()
