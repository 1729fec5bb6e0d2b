"""timm models by name through amc: `amc prune timm:<name> --keep 0.5` and a short search, on a representative
set (ResNet-D, EfficientNet, MobileNetV3, RegNetY, ConvNeXt, ReXNet, GhostNet): does each build, get a layer
table, thin, forward, export to ONNX, save, reload and get faster, and does a 3-episode random search run on it,
or which clear error stops it?

The same steps and table as bench/torchvision_coverage.py (whose per-model function is hard-wired to
`torchvision:` names, so the prune path is repeated here with `timm:` ones; its table and resume helpers are
reused): random weights (pretrained=False, nothing downloaded), each model at its timm default input, in a
subprocess with a time limit, results appended per model to a JSON lines file (a killed run continues). The
search step runs `amc.api.prepare(..., method="random", cost_model="macs", budget=0.5)` for 3 episodes with a
stand-in score (agreement of the pruned network's logits with the dense one's on 2 random images: no dataset
at 224x224 ships with amc), so it shows the search machinery works on the model, not an accuracy.

    .venv/bin/python bench/timm_coverage.py 2>&1 | tee bench/logs/bench_timm_coverage.log
    .venv/bin/python bench/timm_coverage.py --models resnet10t --results /tmp/r.jsonl --table /tmp/t.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from torchvision_coverage import _read, _status, markdown  # noqa: E402

LOGS = Path(__file__).parent / "logs"
MODELS = (
    "resnet50d",
    "efficientnet_b0",
    "mobilenetv3_large_100",
    "regnety_016",
    "convnext_nano",
    "rexnet_100",
    "ghostnet_100",
)
"""issue 20's representative set; every name is current in timm 1.0.31."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="timm names (default: the set above)")
    parser.add_argument("--results", type=Path, default=LOGS / "timm_coverage.jsonl")
    parser.add_argument("--table", type=Path, default=LOGS / "timm_coverage.md")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per model before it counts as 'timeout'")
    parser.add_argument("--repeats", type=int, default=10, help="timed batch-1 passes per network (5 rounds)")
    parser.add_argument("--episodes", type=int, default=3, help="random-search episodes per model (0: no search)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.repeats, args.episodes)))
        return 0
    import timm

    done = {row["model"]: row for row in _read(args.results)}
    print(f"torch {torch.__version__}, timm {timm.__version__}, 1 thread, keep 0.5, L1; {len(args.models)} models")
    print(f"results: {args.results} ({len(done)} already there; timings taken on a loaded machine)")
    for name in args.models:
        if name in done:
            print(f"{name}: done before ({_status(done[name])})")
            continue
        row = _run_isolated(name, args.timeout, args.repeats, args.episodes)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with args.results.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        done[name] = row
        search = f", search {row['search']}" if row.get("search") else ""
        print(f"{name}: {_status(row)}{search} ({row.get('seconds', 0):.0f} s)", flush=True)
    rows = [done[name] for name in args.models if name in done]
    table = markdown(rows) + "\n\n" + _search_table(rows)
    args.table.write_text(table + "\n")
    print(table)
    ok = sum(row.get("error") is None for row in rows)
    searched = sum(bool(row.get("search", "").startswith("ok")) for row in rows)
    print(f"\n{ok}/{len(rows)} timm models pruned, saved, reloaded and measured; {searched}/{len(rows)} searched")
    return 0


def run_one(name: str, repeats: int, episodes: int) -> dict[str, Any]:
    """The `amc prune timm:NAME --keep 0.5` path for one model, then a short search; a failure becomes an error."""
    from amc.deliver.export import export
    from amc.errors import UserError
    from amc.graph import build_layer_table
    from amc.models import create_model, model_info
    from amc.pruning import Strategy, StrategyMetadata, prune_network
    from amc.pruning.export import check_saveable, load_thinned
    from amc.pruning.exported import count_macs, read_manifest
    from amc.schedule import Schedule
    from hwmodel.lut.backends import TorchBackend

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model_name = f"timm:{name}"
    row: dict[str, Any] = {"model": name, "error": None}
    step = "build"
    try:
        size = model_info(model_name).input_size
        row["input"] = "x".join(map(str, size))
        model = create_model(model_name).eval()
        step = "layer table"
        table = build_layer_table(model, size, model_name)
        row.update(groups=len(table.prunable_groups), macs_before=table.total_macs, params_before=table.total_params)
        step = "format check"
        row["planned"] = check_saveable(model, model_name, size)
        step = "prune"
        info = StrategyMetadata(model=model_name, input_size=size, selection="l1", notes="uniform keep 0.5")
        strategy = Strategy.uniform(table, 0.5, 8, info)
        thinned = prune_network(model, table, strategy.kept_channels(table), selection="l1").model.eval()
        after = build_layer_table(thinned, size, model_name)
        row.update(macs_after=after.total_macs, params_after=after.total_params)
        row.update(counted_before=count_macs(model, size), counted_after=count_macs(thinned, size))
        with tempfile.TemporaryDirectory() as folder:
            step = "save + ONNX"
            files = export(thinned, folder, Schedule(strategy), size, model_name)
            manifest = read_manifest(folder)
            row.update(format=manifest.format if manifest else "?", reason=manifest.reason if manifest else "")
            row["onnx_diff"] = files.onnx_max_abs_diff
            step = "reload"
            reloaded = load_thinned(folder)
            worst = 0.0
            for batch in (1, 2):
                example = torch.randn(batch, *size)
                with torch.no_grad():
                    expected, got = thinned(example), reloaded(example)
                worst = max(worst, float((expected - got).abs().max() / expected.abs().max().clamp(min=1.0)))
            row["reload_diff"] = worst
            row["counted_reloaded"] = count_macs(reloaded, size)
            if row["counted_reloaded"] != row["counted_after"]:
                raise RuntimeError(
                    f"the reloaded network counts {row['counted_reloaded']:,} MACs, not {row['counted_after']:,}"
                )
            if worst > 1e-4:
                raise RuntimeError(f"the reloaded network differs from the thinned one by {worst:.1e}")
            step = "measure"
            backend = TorchBackend(1, warmup=2, repeats=repeats)
            before_ms, after_ms = (
                m.median_ms for m in backend.measure_networks([model, reloaded], (1, *size), rounds=5)
            )
            row.update(ms_before=before_ms, ms_after=after_ms)
    except UserError as error:
        row["error"] = f"{step}: " + " ".join(str(error).split())
    except Exception as error:  # a bug, not a user's mistake: recorded so the table names it
        row["error"] = f"{step}: BUG {type(error).__name__}: " + " ".join(str(error).split())[:300]
    if episodes and row.get("groups"):
        row["search"] = _search(model_name, episodes)
    return row


def _search(model_name: str, episodes: int) -> str:
    """A short random search (MACs budget 0.5) through the Python API, with a stand-in score; 'ok ...' or why not."""
    import amc
    from amc.errors import UserError
    from amc.models import create_model, model_info

    size = model_info(model_name).input_size
    model = create_model(model_name).eval()
    images = torch.randn(2, *size)
    with torch.no_grad():
        dense = model(images)

    def score(pruned: torch.nn.Module) -> float:
        with torch.no_grad():
            agreement = torch.nn.functional.cosine_similarity(pruned.eval()(images), dense, dim=1).mean()
        return float(agreement.clamp(0.0, 1.0))

    try:
        settings = {"search.episodes": episodes, "experiment.seed": 0}
        task = amc.prepare(model, size, score, method="random", budget=0.5, model_name=model_name, settings=settings)
        with tempfile.TemporaryDirectory() as out:
            result = amc.search_strategy(task, out, progress=False, log=lambda _: None)
        share = result.best_cost / result.budget.dense_cost
        return (
            f"ok: {result.episodes} episodes, best at {share:.2f} of the dense MACs, score {result.best_accuracy:.3f}"
        )
    except UserError as error:
        return "failed: " + " ".join(str(error).split())
    except Exception as error:  # a bug: recorded so the table names it
        return f"failed: BUG {type(error).__name__}: " + " ".join(str(error).split())[:300]


def _run_isolated(name: str, timeout: int, repeats: int, episodes: int) -> dict[str, Any]:
    """`run_one` in a subprocess: a hang becomes 'timeout', a crash its last line of stderr."""
    start = time.perf_counter()
    command = [sys.executable, __file__, "--one", name, "--repeats", str(repeats), "--episodes", str(episodes)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"model": name, "error": f"timeout after {timeout} s", "seconds": time.perf_counter() - start}
    lines = done.stdout.strip().splitlines()
    try:
        row: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        row = {"model": name, "error": f"crashed (exit {done.returncode}): {tail[:300]}"}
    row["seconds"] = time.perf_counter() - start
    return row


def _search_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | 3-episode random search (MACs budget 0.5, stand-in score) |", "|---|---|"]
    lines += [f"| {row['model']} | {(row.get('search') or 'not run').replace('|', '/')} |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
