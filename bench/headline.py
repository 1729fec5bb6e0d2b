"""The headline experiment: every search method at 50% of the dense latency, fine-tuned alike, side by side.

    .venv/bin/python bench/headline.py [--methods amc netadapt ...] [--seeds 0 1 2] [--finetune-epochs 1]
        [--set model.name=resnet56] [--set search.episodes=200 --set agent.warmup_episodes=50] [--out DIR]
    .venv/bin/python bench/headline.py --smoke       # the tiny smoke model: checks the pipeline in about a minute

1. search: configs/methods/<method>.yaml (+ --set overrides) via bench/search_methods.py into <out>/<method>-s<seed>
   (shared with that bench: a finished run is reused, an interrupted one resumed); seeds for amc, random, bayes;
2. `amc evaluate` of every run with the same number of fine-tuning epochs (resumable; a finished one is reused);
3. `amc compare` of all runs into <out>/comparison/ (comparison.md, comparison.csv, plots/pareto.png), and the
   Pareto plot copied to bench/figures/headline-<model>-pareto.png for the README.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from search_methods import METHODS, STOCHASTIC, run_one  # noqa: E402

from amc.cli.main import main as amc  # noqa: E402
from amc.config import parse_override  # noqa: E402
from amc.deliver.compare import compare_runs  # noqa: E402
from amc.deliver.evaluate import EVALUATION_FILE  # noqa: E402

FIGURES = Path(__file__).parent / "figures"


def evaluate(run: Path, epochs: int) -> None:
    if (run / "evaluate" / EVALUATION_FILE).is_file():
        return
    code = amc(["evaluate", str(run), "--finetune-epochs", str(epochs), "--no-progress", "--threads", "1"])
    if code != 0:
        raise SystemExit(f"amc evaluate {run} failed with exit code {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--out", type=Path, help="default bench/results/search-methods (or -smoke)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    extra = dict(parse_override(item) for item in args.set)
    out = args.out or Path(__file__).parent / "results" / ("search-methods-smoke" if args.smoke else "search-methods")
    runs = []
    for method in args.methods:
        for seed in args.seeds if method in STOCHASTIC else args.seeds[:1]:
            run_one(method, seed, args.workers, args.smoke, out, extra)
            runs.append(out / f"{method}-s{seed}")
    for run in runs:
        evaluate(run, args.finetune_epochs)
    comparison = compare_runs(runs, out / "comparison")
    model = comparison.records[0].model.replace(":", "-")
    if not args.smoke:
        FIGURES.mkdir(exist_ok=True)
        shutil.copyfile(out / "comparison" / "plots" / "pareto.png", FIGURES / f"headline-{model}-pareto.png")
        shutil.copyfile(out / "comparison" / "plots" / "keep_ratios.png", FIGURES / f"headline-{model}-keep-ratios.png")
    print(f"\nwritten: {out / 'comparison' / 'comparison.md'}")


if __name__ == "__main__":
    main()
