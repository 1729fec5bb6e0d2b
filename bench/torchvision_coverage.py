"""Every torchvision classification model through `amc prune MODEL --keep 0.5` (uniform, L1 selection): does it
thin, forward, export to ONNX, save, reload and get faster, or which clear error stops it?

Per model (random weights, nothing downloaded; 3x224x224, Inception-v3 3x299x299), in a subprocess with a time
limit, the library calls `amc prune` makes (amc/cli/prune_cmd.py): layer table, `check_saveable` (the early
format decision), uniform keep 0.5 rounded to 8 channels, `prune_network` (L1), `amc.export` (thinned folder +
ONNX checked against ONNX Runtime), `load_thinned` (either format) with the reload's output compared to the
thinned network's at batch 1 and 2, then batch-1 latency dense vs reloaded, interleaved as bench/prune_zoo.py
does. MACs come from amc's layer table (conv and linear layers, as the cost models price them) and, as a check,
from PyTorch's FLOP counter over a forward pass ("counted": every matmul, attention included; the reloaded
network's count must equal the thinned one's). Results are appended per model to a JSON lines file, so a killed
run continues where it stopped; models run smallest first (by parameter count), so the big ones come last.

    .venv/bin/python bench/torchvision_coverage.py                       # all, resumable
    .venv/bin/python bench/torchvision_coverage.py --models resnet18 convnext_tiny --results /tmp/r.jsonl
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torchvision

LOGS = Path(__file__).parent / "logs"
SIZES = {"inception_v3": (3, 299, 299)}
"""Models whose usual input is not 224x224."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="torchvision names (default: every classification model)")
    parser.add_argument("--results", type=Path, default=LOGS / "torchvision_coverage.jsonl")
    parser.add_argument("--table", type=Path, default=LOGS / "torchvision_coverage.md")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per model before it counts as 'timeout'")
    parser.add_argument("--repeats", type=int, default=10, help="timed batch-1 passes per network (5 rounds)")
    parser.add_argument(
        "--max-params",
        type=float,
        default=400e6,
        help="models with more parameters are recorded as not run (a 2.5 GB model needs ~10 GB here); default 4e8",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.repeats)))
        return 0
    names = args.models or sorted(torchvision.models.list_models(module=torchvision.models), key=_params)
    done = {row["model"]: row for row in _read(args.results)}
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, 1 thread, keep 0.5, L1; {len(names)} models"
    )
    print(f"results: {args.results} ({len(done)} already there; timings taken on a loaded machine)")
    for name in names:
        if name in done:
            print(f"{name}: done before ({_status(done[name])})")
            continue
        params = _params(name)
        if params > args.max_params:  # in the table, not in the results: a run with a larger limit tries it
            done[name] = {"model": name, "error": f"not run: {params / 1e6:.0f} M params > --max-params"}
            print(f"{name}: {_status(done[name])}")
            continue
        row = _run_isolated(name, args.timeout, args.repeats)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with args.results.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        done[name] = row
        print(f"{name}: {_status(row)} ({row.get('seconds', 0):.0f} s)", flush=True)
    rows = [done[name] for name in names if name in done]
    table = markdown(rows)
    args.table.write_text(table + "\n")
    print(table)
    ok = sum(row.get("error") is None for row in rows)
    print(f"\n{ok}/{len(rows)} models pruned, saved, reloaded and measured (Torch-Pruning publishes 77/85)")
    return 0


def run_one(name: str, repeats: int) -> dict[str, Any]:
    """The `amc prune torchvision:NAME --keep 0.5` path for one model; any failure becomes the row's error."""
    from amc.deliver.export import export
    from amc.errors import UserError
    from amc.graph import build_layer_table
    from amc.models import create_model
    from amc.pruning import Strategy, StrategyMetadata, prune_network
    from amc.pruning.export import check_saveable, load_thinned
    from amc.pruning.exported import count_macs, read_manifest
    from amc.schedule import Schedule
    from hwmodel.lut.backends import TorchBackend

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model_name = f"torchvision:{name}"
    size = SIZES.get(name, (3, 224, 224))
    row: dict[str, Any] = {"model": name, "input": "x".join(map(str, size)), "error": None}
    step = "build"
    try:
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
    return row


def _run_isolated(name: str, timeout: int, repeats: int) -> dict[str, Any]:
    """`run_one` in a subprocess: a hang becomes 'timeout', a crash its last line of stderr."""
    start = time.perf_counter()
    command = [sys.executable, __file__, "--one", name, "--repeats", str(repeats)]
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


_COUNTS = ("macs_before", "macs_after", "counted_before", "counted_after", "params_before", "params_after")


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | input | groups | MACs before | MACs after | MACs counted before / after | params before | "
        "params after | format | latency before (ms, loaded) | latency after (ms, loaded) | speed-up | error |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for row in rows:
        mega = {
            key: f"{row[key] / 1e6:.{2 if 'params' in key else 1}f}" if row.get(key) is not None else ""
            for key in _COUNTS
        }
        ms = {key: f"{row[key]:.1f}" if row.get(key) is not None else "" for key in ("ms_before", "ms_after")}
        speedup = f"{row['ms_before'] / row['ms_after']:.2f}x" if row.get("ms_after") else ""
        lines.append(
            f"| {row['model']} | {row.get('input', '')} | {row.get('groups', '')} | {mega['macs_before']} M "
            f"| {mega['macs_after']} M | {mega['counted_before']} / {mega['counted_after']} M "
            f"| {mega['params_before']} M | {mega['params_after']} M | {row.get('format', '')} | {ms['ms_before']} "
            f"| {ms['ms_after']} | {speedup} | {(row.get('error') or '').replace('|', '/')} |"
        )
    return "\n".join(lines)


@functools.cache
def _params(name: str) -> int:
    """Parameter count, without allocating weights where the model's init allows it, to run the big models last."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GoogLeNet's and Inception's notice about their init
        try:
            with torch.device("meta"):
                model = torchvision.models.get_model(name, weights=None)
        except NotImplementedError:  # an init that copies data (scipy's truncated normal): build it for real
            model = torchvision.models.get_model(name, weights=None)
    return sum(p.numel() for p in model.parameters())


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _status(row: dict[str, Any]) -> str:
    if row.get("error"):
        return "FAILED " + row["error"]
    return f"ok, {row.get('format')}, {row['ms_before'] / row['ms_after']:.2f}x (loaded)"


if __name__ == "__main__":
    sys.exit(main())
