"""Training steps and search episodes per second under each thread setting, idle and with one core busy.

    .venv/bin/python bench/thread_policy.py [--steps 20] [--episodes 6] [--settings 1 2 2:passive auto]

Each setting runs in a fresh process (OpenMP reads its wait policy once, at start-up): `N` is N torch threads
with OpenMP's default (active, spinning) wait policy, `N:passive` the same with OMP_WAIT_POLICY=PASSIVE, and
`auto` what amc chooses by default (`experiment.threads: auto`). The work is ResNet-20 on Fashion-MNIST
(random initial weights: only the time matters): SGD training steps at batch 128, and search episodes
(lstsq channel selection, BN re-estimation on 512 images, scoring on 1,000 search-val images). "busy" runs one
other process that spins on one core for the whole measurement, as another job on a shared 2-core machine
would. Medians over the steps and episodes after one warm-up each. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time

WORKER = r"""
import json, statistics, sys, time
import numpy as np, torch, torch.nn.functional as F
from amc.config import load_config
from amc.data import iterate_batches, load_dataset
from amc.graph import build_layer_table
from amc.models import create_model
from amc.problem import SearchValScorer, problem_from_objects
from amc.training.threads import apply_thread_setting

steps, episodes, setting = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
threads = apply_thread_setting(setting.split(":")[0])
bundle = load_dataset("fashion-mnist", search_val_size=5000)
torch.manual_seed(0)
model = create_model("resnet20", in_channels=1, num_classes=10)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
model.train()
times = []
for index, (images, labels) in enumerate(iterate_batches(bundle.train, 128, shuffle=True, seed=0)):
    if index > steps:
        break
    tick = time.perf_counter()
    optimizer.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()
    times.append(time.perf_counter() - tick)
train_s = statistics.median(times[1:])
model.eval()
config = load_config(None, {"model.checkpoint": "none", "cost.model": "macs", "search.selection": "lstsq"})
scorer = SearchValScorer.from_datasets(bundle.train, bundle.search_val, 1000, 512, True, 256, 0)
problem = problem_from_objects(config, model, bundle.input_size, scorer, progress=False, log=lambda _: None)
rng = np.random.default_rng(0)
times = []
for _ in range(episodes + 1):
    decided = {}
    for step in range(len(problem.order)):
        decided[problem.order[step]] = problem.clip(step, decided, problem.bounds.value(rng.uniform(-1, 1)))
    tick = time.perf_counter()
    problem.score(decided)
    times.append(time.perf_counter() - tick)
print(json.dumps({"threads": threads, "train_step_s": train_s, "episode_s": statistics.median(times[1:])}))
"""


def _spin(stop: float) -> None:
    while time.time() < stop:
        pass


def measure(setting: str, steps: int, episodes: int, busy: bool) -> dict[str, float]:
    env = dict(os.environ)
    if setting.endswith(":passive"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    spinner = None
    if busy:
        spinner = multiprocessing.Process(target=_spin, args=(time.time() + 3600,), daemon=True)
        spinner.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", WORKER, str(steps), str(episodes), setting],
            capture_output=True, text=True, env=env, check=True,
        ).stdout  # fmt: skip
    finally:
        if spinner is not None:
            spinner.terminate()
            spinner.join()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--settings", nargs="+", default=["1", "2", "2:passive", "auto"])
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} before the runs; {os.cpu_count()} cores")
    print(
        "| setting | threads | train step idle (s) | busy (s) | busy/idle | episode idle (s) | busy (s) | busy/idle |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for setting in args.settings:
        idle = measure(setting, args.steps, args.episodes, busy=False)
        busy = measure(setting, args.steps, args.episodes, busy=True)
        print(
            f"| {setting} | {idle['threads']} / {busy['threads']} | {idle['train_step_s']:.3f} | "
            f"{busy['train_step_s']:.3f} | {busy['train_step_s'] / idle['train_step_s']:.2f}x | "
            f"{idle['episode_s']:.2f} | {busy['episode_s']:.2f} | {busy['episode_s'] / idle['episode_s']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
