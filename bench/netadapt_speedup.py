"""Wall time of N NetAdapt iterations on ResNet-20 (configs/methods/netadapt.yaml): one worker, two local worker
processes, and two Ray actors. The candidates of an iteration (one per coupling group) are independent, so the
ideal speed-up is the number of workers; the rest is overhead (start-up, shipping the current network, idle
workers at the end of an iteration).

    .venv/bin/python bench/netadapt_speedup.py [--iterations 2] [--out DIR]
    .venv/bin/python bench/netadapt_speedup.py --smoke      # the tiny smoke model, seconds: checks the bench runs

Every setting must make the same decisions (the iteration logs are compared). Prints a Markdown table and writes
it with a JSON to --out. On a 2-core machine with other work running the speed-up is bounded by the free cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from amc.config import load_config
from amc.errors import UserError
from amc.problem import Task, build_task
from amc.search.methods import run_search
from amc.search.netadapt import ITERATIONS_FILE

CONFIGS = Path(__file__).parent.parent / "configs"
SETTINGS = (
    ("1 worker", {"search.workers": 1, "search.executor": "local"}),
    ("2 processes", {"search.workers": 2, "search.executor": "local"}),
    ("2 Ray actors", {"search.workers": 2, "search.executor": "ray"}),
)
SMOKE = {"search.method": "netadapt", "search.netadapt.step": 0.1, "search.netadapt.finetune_steps": 20}


def config_path(smoke: bool) -> Path:
    return CONFIGS / ("smoke.yaml" if smoke else "methods/netadapt.yaml")


def timed_run(task: Task, path: Path, overrides: dict[str, Any], iterations: int, smoke: bool) -> dict:
    """Wall time of `iterations` NetAdapt iterations (fewer if the budget is met first) with `overrides`."""
    config = load_config(path, {**(SMOKE if smoke else {}), **overrides, "experiment.threads": 1,
                                "search.netadapt.max_iterations": iterations})  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="netadapt-speedup-"))
    start = time.perf_counter()
    try:
        run_search(replace(task, config=config), folder / "run", progress=False, log=lambda _: None)
    except UserError as error:  # stopped at netadapt.max_iterations before the budget: what we time
        if "netadapt.max_iterations" not in str(error):
            raise
    wall = time.perf_counter() - start
    log = (folder / "run" / ITERATIONS_FILE).read_text()
    shutil.rmtree(folder)
    return {"wall_s": wall, "iterations": log.count("\n") - 1, "log": log}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="the tiny smoke model instead of ResNet-20 (seconds)")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/netadapt-speedup[-smoke])")
    args = parser.parse_args()
    torch.set_num_threads(1)
    path = config_path(args.smoke)
    task = build_task(load_config(path, {**(SMOKE if args.smoke else {}), "experiment.threads": 1}), progress=False)
    print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores; {task.config.model.name}, "
          f"{len(task.problem.order)} candidates per iteration, {args.iterations} iterations")  # fmt: skip
    results = {name: timed_run(task, path, overrides, args.iterations, args.smoke) for name, overrides in SETTINGS}
    serial = results[SETTINGS[0][0]]
    lines = ["| setting | iterations | wall (s) | speed-up | overhead vs ideal (s) | same decisions |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for (name, overrides), result in zip(SETTINGS, results.values()):
        ideal = serial["wall_s"] / overrides["search.workers"]
        lines.append(
            f"| {name} | {result['iterations']} | {result['wall_s']:.1f} | {serial['wall_s'] / result['wall_s']:.2f}x"
            f" | {result['wall_s'] - ideal:+.1f} | {result['log'] == serial['log']} |"
        )
    text = "\n".join(lines)
    print(text)
    out = args.out or Path(__file__).parent / "results" / f"netadapt-speedup{'-smoke' if args.smoke else ''}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "netadapt_speedup.md").write_text(text + "\n")
    summary = {name: {k: v for k, v in result.items() if k != "log"} for name, result in results.items()}
    (out / "netadapt_speedup.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written: {out / 'netadapt_speedup.md'}, {out / 'netadapt_speedup.json'}")


if __name__ == "__main__":
    main()
