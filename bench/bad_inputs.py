"""Every `amc` command fed bad input: is each one a clear error (exit 2, one paragraph, no traceback)? (issue 19)

    .venv/bin/python bench/bad_inputs.py [--jobs N] [--only SUBSTRING] [--timeout S] [--keep]

Builds its fixtures once in a temporary folder (its own AMC_CACHE; a 6-episode smoke search of the `tiny` model on
synthetic data, a small LUT of `tiny`, garbage and truncated files), then runs each case as a subprocess
`python -m amc.cli.main ...` and classifies it:

    clear      exit 2, no "Traceback" on stderr, a non-empty message
    traceback  "Traceback" on stderr (whatever the exit status)
    silent     anything else: exit 0 (the bad input was accepted), or another exit status without a message
    timeout    ran past --timeout (the bad input was accepted and work started)

One line per case, then the counts. Exit status 0 when every case is clear, 1 otherwise.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SMOKE = str(ROOT / "configs" / "smoke.yaml")


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    """Command-line words; {W} is the fixture folder, {RUN} the finished smoke run, {LUT} the tiny model's LUT,
    {OUT} a fresh output folder for this case."""


def search(*extra: str) -> tuple[str, ...]:
    return ("search", "--config", SMOKE, "--no-progress", "--out", "{OUT}", *extra)


def search_no_out(*extra: str) -> tuple[str, ...]:
    return ("search", "--config", SMOKE, "--no-progress", *extra)


def train(*extra: str) -> tuple[str, ...]:
    return ("train", "--config", SMOKE, "--no-progress", *extra)


def prune(*extra: str, model: str = "tiny") -> tuple[str, ...]:
    return ("prune", model, "--no-onnx", "--repeats", "2", *extra)


LUT_BUILD = ("lut", "build", "--model", "tiny", "--input-size", "3,16,16", "--no-progress", "--calibrate", "0")
LUT_FAST = ("--repeats", "2", "--warmup", "1", "--rounds", "1", "--round-to", "4")
EVALUATE = ("evaluate", "{RUN}", "--no-progress", "--no-onnx", "--out", "{OUT}")

CASES = [
    # search: bad numbers
    Case("search --budget nan", search("--budget", "nan")),
    Case("search --budget 1.5 (ratio above 1)", search("--budget", "1.5")),
    Case("search --budget -0.5", search("--budget", "-0.5")),
    Case("search --budget 0", search("--budget", "0")),
    Case("search --budget inf", search("--budget", "inf")),
    Case("search --episodes 0", search("--episodes", "0")),
    Case("search --episodes -3", search("--episodes", "-3")),
    Case("search --episodes 10**12 (huge)", search("--episodes", "1000000000000")),
    Case("search --threads 0", search("--threads", "0")),
    Case("search --threads -1", search("--threads", "-1")),
    Case("search --workers 0", search("--workers", "0")),
    Case("search --workers -2", search("--workers", "-2")),
    Case("search --set search.eval_images=0", search("--set", "search.eval_images=0")),
    Case("search --set search.bn_images=-1", search("--set", "search.bn_images=-1")),
    Case("search --set agent.warmup_episodes=-1", search("--set", "agent.warmup_episodes=-1")),
    Case("search --set agent.lbound=2", search("--set", "agent.lbound=2")),
    Case("search --set data.search_val_size=0", search("--set", "data.search_val_size=0")),
    Case("search --set data.search_val_size=10**6", search("--set", "data.search_val_size=1000000")),
    Case("search --set search.round_to=0", search("--set", "search.round_to=0")),
    Case("search --set budget.ratio=nan", search("--set", "budget.ratio=nan")),
    # search: wrong names and types
    Case("search --method nosuch", search("--method", "nosuch")),
    Case("search --cost-model nosuch", search("--cost-model", "nosuch")),
    Case("search --executor nosuch", search("--executor", "nosuch")),
    Case("search --model nosuch", search("--model", "nosuch")),
    Case("search --dataset nosuch", search("--dataset", "nosuch")),
    Case("search --set search.episodes=abc (wrong type)", search("--set", "search.episodes=abc")),
    Case("search --set budget.ratio=[1,2] (list for a number)", search("--set", "budget.ratio=[1,2]")),
    Case("search --set agent.hidden=abc (string for a list)", search("--set", "agent.hidden=abc")),
    Case("search --set nosuch.key=1 (unknown section)", search("--set", "nosuch.key=1")),
    Case("search --set search.nosuchkey=1 (unknown key)", search("--set", "search.nosuchkey=1")),
    Case("search --set search.episodes (no =)", search("--set", "search.episodes")),
    Case("search --config missing file", search_no_out("--config", "/nonexistent/amc.yaml", "--out", "{OUT}")),
    Case("search --config garbage YAML", search_no_out("--config", "{W}/garbage.yaml", "--out", "{OUT}")),
    Case("search --config YAML list at top", search_no_out("--config", "{W}/list.yaml", "--out", "{OUT}")),
    Case("search --config YAML wrong type (episodes: many)", search_no_out("--config", "{W}/wrongtype.yaml")),
    Case("search --config binary file", search_no_out("--config", "{W}/garbage.bin", "--out", "{OUT}")),
    # search: files
    Case("search --cost-model lut:missing", search("--cost-model", "lut:/nonexistent/lut.json")),
    Case("search --cost-model lut:garbage", search("--cost-model", "lut:{W}/garbage.json")),
    Case("search --cost-model lut:truncated", search("--cost-model", "lut:{W}/lut_truncated.json")),
    Case("search LUT with negative scale", search("--cost-model", "lut:{W}/lut_negscale.json")),
    Case(
        "search LUT of another model (tiny LUT, resnet20)", search("--cost-model", "lut:{LUT}", "--model", "resnet20")
    ),
    Case("search --checkpoint missing", search("--checkpoint", "/nonexistent/w.pt")),
    Case("search --checkpoint plain tensor", search("--checkpoint", "{W}/tensor.pt")),
    Case("search --checkpoint training-script dict", search("--checkpoint", "{W}/script_dict.pt")),
    Case("search --checkpoint garbage", search("--checkpoint", "{W}/garbage.bin")),
    Case("search --checkpoint of another model", search("--checkpoint", "{W}/resnet20_state.pt")),
    Case("search --policy garbage", search("--policy", "{W}/garbage.bin")),
    Case("search --policy missing", search("--policy", "/nonexistent/agent.pt")),
    Case("search --policy a model checkpoint", search("--policy", "{W}/tensor.pt")),
    Case("search --out existing file", search_no_out("--out", "{W}/afile")),
    Case("search --out unwritable", search_no_out("--out", "/proc/amc-bad/out")),
    Case("search --out under a file", search_no_out("--out", "{W}/afile/sub")),
    Case("search --resume with changed budget", search_no_out("--out", "{W}/run_copy", "--resume", "--budget", "0.3")),
    Case("search --resume of a folder that is not a run", search_no_out("--out", "{W}/notarun", "--resume")),
    Case(
        "search bayes storage in missing dir",
        search("--method", "bayes", "--set", "search.bayes.storage=sqlite:///{W}/no/dir/s.db"),
    ),
    Case(
        "search bayes storage unreachable postgres",
        search("--method", "bayes", "--set", "search.bayes.storage=postgresql://u@127.0.0.1:1/db"),
    ),
    Case("search fashion-mnist garbage idx", search("--dataset", "fashion-mnist", "--data-root", "{W}/idx_garbage")),
    Case(
        "search fashion-mnist truncated idx", search("--dataset", "fashion-mnist", "--data-root", "{W}/idx_truncated")
    ),
    Case("search cifar10 garbage batch", search("--dataset", "cifar10", "--data-root", "{W}/cifar_garbage")),
    Case("search cifar10 missing folder", search("--dataset", "cifar10", "--data-root", "{W}/emptydir")),
    Case("search imagefolder without images", search("--dataset", "imagefolder", "--data-root", "{W}/images_empty")),
    Case(
        "search imagefolder unreadable images",
        search("--dataset", "imagefolder", "--data-root", "{W}/images_bad", "--set", "data.search_val_size=1"),
    ),
    Case("search mnist without data.root", search("--dataset", "mnist")),
    # train
    Case("train --epochs 0", train("--epochs", "0", "--out", "{OUT}/w.pt")),
    Case("train --epochs -1", train("--epochs", "-1", "--out", "{OUT}/w.pt")),
    Case("train --lr nan", train("--lr", "nan", "--out", "{OUT}/w.pt")),
    Case("train --lr -0.1", train("--lr", "-0.1", "--out", "{OUT}/w.pt")),
    Case("train --set train.batch_size=0", train("--set", "train.batch_size=0", "--out", "{OUT}/w.pt")),
    Case("train --threads 0", train("--threads", "0", "--out", "{OUT}/w.pt")),
    Case("train --out existing folder", train("--out", "{W}/emptydir")),
    Case("train --out unwritable", train("--out", "/proc/amc-bad/w.pt")),
    # lut
    Case("lut build --round-to 0", (*LUT_BUILD, "--round-to", "0", "--repeats", "2", "--out", "{OUT}/l.json")),
    Case("lut build --lbound 2", (*LUT_BUILD, *LUT_FAST, "--lbound", "2", "--out", "{OUT}/l.json")),
    Case("lut build --lbound 0", (*LUT_BUILD, *LUT_FAST, "--lbound", "0", "--out", "{OUT}/l.json")),
    Case("lut build --repeats 0", (*LUT_BUILD, "--repeats", "0", "--round-to", "4", "--out", "{OUT}/l.json")),
    Case("lut build --threads 0", (*LUT_BUILD, *LUT_FAST, "--threads", "0", "--out", "{OUT}/l.json")),
    Case("lut build --model nosuch", ("lut", "build", "--model", "nosuch", "--out", "{OUT}/l.json")),
    Case("lut build --out existing folder", (*LUT_BUILD, *LUT_FAST, "--out", "{W}/emptydir")),
    Case("lut build --out unwritable", (*LUT_BUILD, *LUT_FAST, "--out", "/proc/amc-bad/l.json")),
    Case("lut info garbage", ("lut", "info", "--lut", "{W}/garbage.json")),
    Case("lut info missing", ("lut", "info", "--lut", "/nonexistent/l.json")),
    Case("lut info truncated", ("lut", "info", "--lut", "{W}/lut_truncated.json")),
    Case("lut info negative scale", ("lut", "info", "--lut", "{W}/lut_negscale.json")),
    Case(
        "lut validate LUT of another model",
        ("lut", "validate", "--lut", "{LUT}", "--model", "resnet20", "--samples", "2", "--no-progress"),
    ),
    # prune
    Case("prune --keep 1.5", prune("--keep", "1.5", "--out", "{OUT}")),
    Case("prune --keep nan", prune("--keep", "nan", "--out", "{OUT}")),
    Case("prune --keep 0", prune("--keep", "0", "--out", "{OUT}")),
    Case("prune --keep 0.5 --round-to 0", prune("--keep", "0.5", "--round-to", "0", "--out", "{OUT}")),
    Case(
        "prune --keep 0.5 --repeats 0",
        ("prune", "tiny", "--no-onnx", "--keep", "0.5", "--repeats", "0", "--out", "{OUT}"),
    ),
    Case("prune strategy keep ratio NaN", prune("--strategy", "{W}/strategy_nan.json", "--out", "{OUT}")),
    Case("prune strategy keep ratio 1.5", prune("--strategy", "{W}/strategy_1.5.json", "--out", "{OUT}")),
    Case("prune strategy garbage", prune("--strategy", "{W}/garbage.json", "--out", "{OUT}")),
    Case("prune strategy missing", prune("--strategy", "/nonexistent/s.json", "--out", "{OUT}")),
    Case(
        "prune strategy of another model",
        prune("--strategy", "{RUN}/best_strategy.json", "--out", "{OUT}", model="resnet20"),
    ),
    Case("prune --checkpoint plain tensor", prune("--keep", "0.5", "--checkpoint", "{W}/tensor.pt", "--out", "{OUT}")),
    Case("prune --checkpoint garbage", prune("--keep", "0.5", "--checkpoint", "{W}/garbage.bin", "--out", "{OUT}")),
    Case("prune --out existing file", prune("--keep", "0.5", "--out", "{W}/afile")),
    Case("prune --out unwritable", prune("--keep", "0.5", "--out", "/proc/amc-bad/out")),
    # schedule
    Case("schedule convert x.txt", ("schedule", "convert", "{W}/x.txt", "{OUT}/y.yaml", "--model", "tiny")),
    Case(
        "schedule convert missing input",
        ("schedule", "convert", "/nonexistent/s.yaml", "{OUT}/y.yaml", "--model", "tiny"),
    ),
    Case(
        "schedule convert to .txt",
        ("schedule", "convert", "{RUN}/best_schedule.yaml", "{OUT}/y.txt", "--model", "tiny"),
    ),
    Case("schedule inspect garbage YAML", ("schedule", "inspect", "{W}/garbage.yaml", "--model", "tiny")),
    Case("schedule inspect binary", ("schedule", "inspect", "{W}/garbage.bin", "--model", "tiny")),
    # devices and unit bundles (issue 15)
    Case("search --device cuda (no GPU here)", search("--device", "cuda")),
    Case("search --device tpu", search("--device", "tpu")),
    Case("search --device cuda:x", search("--device", "cuda:x")),
    Case("search --amp on the CPU", search("--amp")),
    Case("search cost.lut_backend torch-cuda (no GPU)", search("--set", "cost.lut_backend=torch-cuda")),
    Case(
        "lut build --backend torch-cuda (no GPU)",
        (*LUT_BUILD, *LUT_FAST, "--backend", "torch-cuda", "--out", "{OUT}/l.json"),
    ),  # fmt: skip
    Case("lut build --batch 0", (*LUT_BUILD, *LUT_FAST, "--batch", "0", "--out", "{OUT}/l.json")),
    Case("lut export-units --model nosuch", ("lut", "export-units", "--model", "nosuch", "--out", "{OUT}/b")),
    Case("lut export-units --out unwritable", ("lut", "export-units", "--model", "tiny", "--out", "/proc/amc-bad/b")),
    Case(
        "lut export-units --validate 1",
        ("lut", "export-units", "--model", "tiny", "--validate", "1", "--out", "{OUT}/b"),
    ),  # fmt: skip
    Case("lut import missing results", ("lut", "import", "/nonexistent/results.json", "--out", "{OUT}/l.json")),
    Case("lut import garbage results", ("lut", "import", "{W}/garbage.json", "--out", "{OUT}/l.json")),
    Case("evaluate --budget-tolerance -1", (*EVALUATE, "--finetune-epochs", "0", "--budget-tolerance", "-1")),
    Case("evaluate --budget-tolerance nan", (*EVALUATE, "--finetune-epochs", "0", "--budget-tolerance", "nan")),
    # evaluate
    Case("evaluate --finetune-epochs -1", (*EVALUATE, "--finetune-epochs", "-1")),
    Case("evaluate --latency-threads 0", (*EVALUATE, "--finetune-epochs", "0", "--latency-threads", "0")),
    Case("evaluate --throughput-batch 0", (*EVALUATE, "--finetune-epochs", "0", "--throughput-batch", "0")),
    Case("evaluate missing source", ("evaluate", "/nonexistent/run", "--no-progress")),
    Case("evaluate garbage strategy", ("evaluate", "{W}/garbage.json", "--config", SMOKE, "--no-progress")),
    Case(
        "evaluate strategy keep ratio NaN",
        ("evaluate", "{W}/strategy_nan.json", "--config", SMOKE, "--no-progress", "--out", "{OUT}"),
    ),
    # compare
    Case("compare corrupt summary.json", ("compare", "{W}/run_badsummary", "--out", "{OUT}")),
    Case("compare missing folder", ("compare", "/nonexistent/run", "--out", "{OUT}")),
    Case("compare folder that is not a run", ("compare", "{W}/emptydir", "--out", "{OUT}")),
    Case("compare --out existing file", ("compare", "{RUN}", "--out", "{W}/afile")),
    # inspect, list, demo
    Case("inspect nosuch", ("inspect", "nosuch")),
    Case("inspect torchvision:nosuch", ("inspect", "torchvision:nosuch")),
    Case("inspect --input-size 0,0,0", ("inspect", "tiny", "--input-size", "0,0,0")),
    Case("inspect --input-size 3,nan,16", ("inspect", "tiny", "--input-size", "3,nan,16")),
    Case("inspect --num-classes 0", ("inspect", "tiny", "--num-classes", "0")),
    Case("inspect --num-classes -5", ("inspect", "tiny", "--num-classes", "-5")),
    Case("list nosuch", ("list", "nosuch")),
    Case("demo --threads 0", ("demo", "--threads", "0", "--no-progress", "--out", "{OUT}")),
    Case("demo --out existing file", ("demo", "--no-progress", "--out", "{W}/afile")),
]


def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape) + array.tobytes()


def _cli(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "amc.cli.main", *args], capture_output=True, text=True, env=env, timeout=timeout,
        cwd=ROOT,
    )  # fmt: skip


def build_fixtures(work: Path, env: dict[str, str]) -> dict[str, str]:
    """The files the cases name; returns the placeholders."""
    import torch

    run, lut = work / "run", work / "lut_tiny.json"
    for args in (
        ["search", "--config", SMOKE, "--no-progress", "--out", str(run)],
        [*LUT_BUILD, *LUT_FAST, "--out", str(lut)],
    ):
        result = _cli(args, env, 600)
        if result.returncode != 0:
            print(f"fixture `amc {' '.join(args)}` failed:\n{result.stderr[-2000:]}", file=sys.stderr)
    (work / "emptydir").mkdir()
    (work / "notarun").mkdir()
    (work / "notarun" / "notes.txt").write_text("not a run folder\n")
    (work / "afile").write_text("an existing regular file\n")
    (work / "garbage.bin").write_bytes(bytes(range(256)) * 8)
    (work / "garbage.json").write_text('{"_type": "amc.Strategy", "layers": [1, 2')
    (work / "garbage.yaml").write_text("search: [episodes: 3\n  : : :\n")
    (work / "list.yaml").write_text("- search\n- budget\n")
    (work / "wrongtype.yaml").write_text(Path(SMOKE).read_text().replace("episodes: 6", "episodes: many"))
    (work / "x.txt").write_text("not a schedule\n")
    torch.save(torch.zeros(3, 3), work / "tensor.pt")
    torch.save({"model": {"w": torch.zeros(1)}, "optimizer": {}, "epoch": 3}, work / "script_dict.pt")
    from amc.models import create_model

    torch.save(create_model("resnet20", in_channels=3, num_classes=10).state_dict(), work / "resnet20_state.pt")
    for name, images in (
        ("idx_garbage", b"garbage" * 50),
        ("idx_truncated", _idx(np.zeros((60, 28, 28), np.uint8))[:999]),
    ):
        folder = work / name
        folder.mkdir()
        for prefix, count in (("train", 60), ("t10k", 20)):
            (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
            (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.zeros(count, np.uint8))))
    cifar = work / "cifar_garbage" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    good = pickle.dumps({b"data": np.zeros((20, 3072), np.uint8), b"labels": [1] * 20}, protocol=2)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (cifar / name).write_bytes(good[:200] if name == "data_batch_2" else good)
    for name, content in (("images_empty", None), ("images_bad", b"not a jpeg")):
        for split in ("train", "val"):
            folder = work / name / split / "cat"
            folder.mkdir(parents=True)
            if content is not None:
                for index in range(4):
                    (folder / f"{index}.jpg").write_bytes(content)
    if run.is_dir():
        shutil.copytree(run, work / "run_copy")
        shutil.copytree(run, work / "run_badsummary")
        text = (run / "summary.json").read_text()
        (work / "run_badsummary" / "summary.json").write_text(text[: len(text) // 2])
        strategy = json.loads((run / "best_strategy.json").read_text())
        for label, value in (("nan", float("nan")), ("1.5", 1.5)):
            for layer in strategy["layers"]:
                layer["keep_ratio"] = value
            (work / f"strategy_{label}.json").write_text(json.dumps(strategy))
    if lut.is_file():
        text = lut.read_text()
        (work / "lut_truncated.json").write_text(text[: len(text) // 2])
        table = json.loads(text)
        for overhead in table.get("overheads", {}).values():
            overhead["scale"] = -1.0
        if not table.get("overheads"):
            table["overheads"] = {"tiny": {"model": "tiny", "input_size": [3, 16, 16], "offset_ms": 0.0, "scale": -1.0}}
        (work / "lut_negscale.json").write_text(json.dumps(table))
    return {"{W}": str(work), "{RUN}": str(run), "{LUT}": str(lut)}


def classify(result: subprocess.CompletedProcess | None) -> str:
    if result is None:
        return "timeout"
    if "Traceback" in result.stderr:
        return "traceback"
    if result.returncode == 2 and result.stderr.strip():
        return "clear"
    return "silent"


def summary_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if "Traceback" in stderr:
        return lines[-1]
    start = next((i for i, line in enumerate(lines) if line.startswith(("amc: error", "usage:", "amc"))), 0)
    return " ".join(lines[start:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1, help="cases run in parallel (1)")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per case before it counts as timeout")
    parser.add_argument("--keep", action="store_true", help="keep the fixture folder (printed)")
    parser.add_argument("--width", type=int, default=160, help="characters of message per line")
    args = parser.parse_args()
    cases = [case for case in CASES if not args.only or args.only in case.name]
    names = [case.name for case in CASES]
    assert len(set(names)) == len(names), "case names must be distinct"
    work = Path(tempfile.mkdtemp(prefix="amc-bad-inputs-"))
    env = {**os.environ, "AMC_CACHE": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    tick = time.perf_counter()
    places = build_fixtures(work, env)
    print(f"{len(cases)} cases, fixtures in {work} ({time.perf_counter() - tick:.0f} s)", flush=True)

    def run_case(index: int, case: Case) -> tuple[str, str, float]:
        out = work / "out" / f"case{index:03d}"
        replace = {**places, "{OUT}": str(out)}
        words = []
        for word in case.args:
            for key, value in replace.items():
                word = word.replace(key, value)
            words.append(word)
        start = time.perf_counter()
        try:
            result: subprocess.CompletedProcess | None = _cli(words, env, args.timeout)
        except subprocess.TimeoutExpired:
            result = None
        seconds = time.perf_counter() - start
        verdict = classify(result)
        detail = f"exit {result.returncode}: {summary_line(result.stderr)}" if result else f"> {args.timeout:.0f} s"
        return verdict, detail, seconds

    counts: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_case, index, case) for index, case in enumerate(cases)]
        for case, future in zip(cases, futures):
            verdict, detail, seconds = future.result()
            counts[verdict] += 1
            print(f"{verdict:9} {seconds:5.1f}s  {case.name:52} {detail}"[: args.width], flush=True)
    print(
        f"\n{len(cases)} cases: "
        + ", ".join(f"{counts[kind]} {kind}" for kind in ("clear", "traceback", "silent", "timeout"))
        + f" ({time.perf_counter() - tick:.0f} s)"
    )
    if args.keep:
        print(f"fixtures kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if counts["clear"] == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
