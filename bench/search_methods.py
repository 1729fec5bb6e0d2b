"""Every search method on the same task: ResNet-20 / Fashion-MNIST, 50% of the dense latency by this machine's ONNX
Runtime LUT (configs/methods/*.yaml).

    .venv/bin/python bench/search_methods.py [--methods amc netadapt ...] [--seeds 0 1 2] [--workers 1] [--out DIR]
        [--set search.episodes=200 --set agent.warmup_episodes=50]      # any config key, for every method
    .venv/bin/python bench/search_methods.py --smoke      # the tiny smoke model, seconds: checks the bench runs

Each run goes to <out>/<method>-s<seed>/ (a finished run is reused, an interrupted one resumed). The stochastic
methods (amc, random, bayes) run once per seed, the others once. Prints and writes (<out>/search_methods.md and
.json) the best strategy's search-val accuracy (mean ± std over seeds), its LUT cost, its measured latency and
the search's wall time. The `--set` overrides are written beside the table. Long: hours for the full set on one
core; a `--smoke` run takes about a minute. AMC vs uniform vs random alone (issue 5's quality figure):
`--methods amc uniform random`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

import torch

from amc.config import load_config, parse_override
from amc.problem import build_task
from amc.search.methods import run_search

CONFIGS = Path(__file__).parent.parent / "configs"
METHODS = ("amc", "netadapt", "uniform", "sensitivity", "random", "bayes")
STOCHASTIC = {"amc", "random", "bayes"}
COLUMNS = ("best_accuracy", "best_cost", "best_latency_ms", "dense_latency_ms", "wall_s")
SMOKE = {
    "search.episodes": 6, "search.netadapt.step": 0.1, "search.netadapt.finetune_steps": 2,
    "agent.warmup_episodes": 3,
}  # fmt: skip
"""configs/smoke.yaml plus these: every method in seconds on the tiny model and synthetic data."""


def config_for(method: str, seed: int, workers: int, smoke: bool, extra: dict[str, Any]) -> Any:
    overrides = {"experiment.seed": seed, "experiment.threads": 1, "search.workers": workers, **extra}
    if smoke:
        return load_config(CONFIGS / "smoke.yaml", {**overrides, **SMOKE, "search.method": method,
                                                     "experiment.name": f"bench-smoke-{method}"})  # fmt: skip
    return load_config(CONFIGS / "methods" / f"{method}.yaml", overrides)


def run_one(method: str, seed: int, workers: int, smoke: bool, out: Path, extra: dict[str, Any]) -> dict[str, Any]:
    run = out / f"{method}-s{seed}"
    summary = run / "summary.json"
    if not summary.exists():
        task = build_task(config_for(method, seed, workers, smoke, extra), progress=False, log=lambda _: None)
        run_search(task, run, resume=(run / "episodes.csv").exists(), progress=not smoke, log=lambda _: None)
    return json.loads(summary.read_text())


def spread(values: list[float], scale: float = 1.0, spec: str = ".2f") -> str:
    if len(values) == 1:
        return f"{scale * values[0]:{spec}}"
    return f"{scale * statistics.mean(values):{spec}} ± {scale * statistics.stdev(values):{spec}}"


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    first = next(iter(results.values()))[0]
    budget = first["budget"]
    unit = budget["unit"]
    lines = [
        f"budget {budget['value']:.4g} {unit} ({100 * budget['value'] / budget['dense_cost']:.0f}% of the dense "
        f"{budget['dense_cost']:.4g} {unit}), cost model {first['cost_model']}",
        "",
        f"| method | runs | search-val top-1 (%) | cost ({unit}) | measured (ms) | dense measured (ms) | wall (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, runs in results.items():
        column = {key: [float(run[key]) for run in runs] for key in COLUMNS}
        cells = [
            method, str(len(runs)), spread(column["best_accuracy"], 100), spread(column["best_cost"], 1, ".4g"),
            spread(column["best_latency_ms"], 1, ".3f"), spread(column["dense_latency_ms"], 1, ".3f"),
            spread(column["wall_s"], 1, ".0f"),
        ]  # fmt: skip
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=1, help="search.workers for every method")
    parser.add_argument("--smoke", action="store_true", help="the tiny smoke model instead of ResNet-20 (seconds)")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/search-methods[-smoke])")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for every method, e.g. search.episodes=200 (repeatable)")  # fmt: skip
    args = parser.parse_args()
    extra = dict(parse_override(item) for item in args.set)
    torch.set_num_threads(1)
    out = args.out or Path(__file__).parent / "results" / ("search-methods-smoke" if args.smoke else "search-methods")
    print(f"load average {os.getloadavg()[0]:.2f}; methods {args.methods}; seeds {args.seeds}; overrides {extra}")
    results = {
        method: [run_one(method, seed, args.workers, args.smoke, out, extra)
                 for seed in (args.seeds if method in STOCHASTIC else args.seeds[:1])]
        for method in args.methods
    }  # fmt: skip
    text = table(results) + (f"\n\noverrides: {extra}" if extra else "")
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_methods.md").write_text(text + "\n")
    (out / "search_methods.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out / 'search_methods.md'}, {out / 'search_methods.json'}")


if __name__ == "__main__":
    main()
