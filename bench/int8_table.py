"""DeGirum-style INT8 table: ResNet-20 / ResNet-56 on Fashion-MNIST, dense and pruned, float32 beside INT8.

Per network: GMACs, params, test top-1 in ONNX Runtime for the float32 file and the INT8 QDQ file (post-training,
MinMax calibration on training images, asymmetric activations: DeGirum's INT8 column), file size, ORT latency at
batch 1 and the throughput batch (float32 and INT8 timed interleaved, one thread), and each one's speed-up over
the dense float32 network. The pruned rows are uniform keep `--keep` (L1 channels, BatchNorm re-estimated on
training images; `--keep 0`: none) and, with `--run MODEL=RUN_DIR`, that `amc search` run folder's best result
(e.g. an AMC search at 50% of the dense ORT latency), optionally fine-tuned for
`--finetune-epochs` (DESIGN.md: at keep 0.5 raw accuracy is no signal; fine-tune for a meaningful row).
Base models: the cached / shipped `amc train` checkpoints (seed 0).

    .venv/bin/python bench/int8_table.py > bench/logs/int8_table.log
    .venv/bin/python bench/int8_table.py --models resnet20 --run resnet20=RUN_DIR   # + the AMC-pruned row
    .venv/bin/python bench/int8_table.py --smoke          # seconds: proves it runs, figures meaningless
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from amc.config import load_config
from amc.data import DataBundle, iterate_batches
from amc.graph import build_layer_table
from amc.pruning import Strategy, prune_network, remove_masks_
from amc.quantize.ptq import Comparison, PtqSettings, TimingSettings, quantize_network
from amc.training.base_model import load_base_model, load_data
from amc.training.loop import TrainSettings, train


@dataclass(frozen=True)
class _Splits:
    train: Dataset
    search_val: Dataset
    test: Dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--run", action="append", default=[], metavar="MODEL=RUN_DIR",
                        help="prune MODEL as this `amc search` run folder's best result (repeatable)")  # fmt: skip
    parser.add_argument("--keep", type=float, default=0.5,
                        help="uniform keep ratio of the uniform pruned row (0.5; 0: no uniform row)")  # fmt: skip
    parser.add_argument("--bn-images", type=int, default=2048, help="training images re-estimating BN (2048)")
    parser.add_argument("--finetune-epochs", type=int, default=1, help="fine-tune the pruned network (1; 0: none)")
    parser.add_argument("--calibration-images", type=int, default=512)
    parser.add_argument("--test-images", type=int, help="score on the first N test images (default: all)")
    parser.add_argument("--batch", type=int, default=64, help="throughput batch (64)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="ORT threads for latency (1)")
    parser.add_argument("--smoke", action="store_true", help="resnet20 only, tiny settings")
    args = parser.parse_args()
    if args.smoke:
        args.models, args.finetune_epochs, args.calibration_images = ["resnet20"], 0, 64
        args.test_images, args.repeats, args.bn_images = 256, 3, 256
    runs = dict(item.split("=", 1) for item in args.run)
    settings = PtqSettings(args.calibration_images)
    timing = TimingSettings(args.threads, args.batch, args.repeats)
    print(f"INT8 PTQ table on {args.dataset}: {settings}, {timing}, keep {args.keep}, fine-tune "
          f"{args.finetune_epochs} epoch(s), torch threads {torch.get_num_threads()}")  # fmt: skip
    rows = []
    for name in args.models:
        config = load_config(None, {"model.name": name, "data.dataset": args.dataset})
        data = load_data(config)
        splits = _Splits(data.train, data.search_val, _first(data.test, args.test_images))
        dense = load_base_model(config, data, progress=False)
        variants = [(name, dense)]
        if args.keep > 0:
            variants.append(_labelled(name, *_pruned(name, dense, data, None, args)))
        if name in runs:
            variants.append(_labelled(name, *_pruned(name, dense, data, runs[name], args)))
        for label, model in variants:
            with tempfile.TemporaryDirectory(prefix="amc-int8-table-") as folder:
                result = quantize_network(model, data.input_size, splits, Path(folder), settings, timing, 1000)
            table = build_layer_table(model, data.input_size)
            rows.append((label, table.total_macs, table.total_params, result))
            print(f"{label}: fp32 top-1 {100 * result.fp32.test_top1:.2f}%, int8 {100 * result.int8.test_top1:.2f}%")
    print()
    print(_table(rows, args.batch))
    return 0


def _labelled(name: str, model: nn.Module, how: str) -> tuple[str, nn.Module]:
    return f"{name} {how}", model


def _first(dataset: Dataset, count: int | None) -> Dataset:
    if count is None:
        return dataset
    subset = getattr(dataset, "subset", None)
    indices = torch.arange(min(count, len(dataset)))  # type: ignore[arg-type]
    return subset(indices) if subset else Subset(dataset, indices.tolist())


def _pruned(
    name: str, dense: nn.Module, data: DataBundle, run: str | None, args: argparse.Namespace
) -> tuple[nn.Module, str]:
    """The pruned network: a run folder's best result, or uniform keep with BN re-estimation; then fine-tuned."""
    if run is not None:
        from amc.deliver.apply import apply
        from amc.deliver.sources import schedule_source
        from amc.problem import build_task

        run_dir, schedule = schedule_source(Path(run))
        task = build_task(load_config(run_dir / "config.yaml" if run_dir else None), progress=False)
        model, how = remove_masks_(copy.deepcopy(apply(task, schedule))).cpu(), f"AMC ({Path(run).name})"
        summary = Path(run) / "summary.json"
        if summary.is_file():
            found = json.loads(summary.read_text())
            print(f"{name} {how}: {found.get('episodes')} episodes, best cost {found.get('best_cost'):.4g} of dense "
                  f"{found['budget']['dense_cost']:.4g} (search-val {100 * found['best_accuracy']:.2f}%)")  # fmt: skip
    else:
        table = build_layer_table(dense, data.input_size, name)
        kept = Strategy.uniform(table, args.keep).kept_channels(table)
        batches = list(iterate_batches(data.train, 128, shuffle=True, seed=0, limit=args.bn_images))
        model, how = prune_network(dense, table, kept, bn_images=batches).model, f"keep {args.keep:g}"
    if args.finetune_epochs:
        settings = TrainSettings(epochs=args.finetune_epochs, lr=0.01, augment=False)
        train(model, data.train, data.search_val, settings, progress=False)
        how += f" +{args.finetune_epochs} ep"
    return model.cpu().eval(), how


def _table(rows: list[tuple[str, int, int, Comparison]], batch: int) -> str:
    from amc.report.tables import markdown_table

    base = {label.split()[0]: c for label, _, _, c in rows if " " not in label}
    cells = []
    for label, macs, params, c in rows:
        dense = base[label.split()[0]].fp32
        cells.append([
            label, f"{macs / 1e9:.4f}", f"{params / 1e6:.3f}", f"{100 * c.fp32.test_top1:.2f}",
            f"{100 * c.int8.test_top1:.2f}", f"{c.fp32.size_bytes / 2**20:.3f}", f"{c.int8.size_bytes / 2**20:.3f}",
            f"{c.fp32.batch1_ms:.3f} / {c.int8.batch1_ms:.3f}", f"{c.fp32.batch_ms:.2f} / {c.int8.batch_ms:.2f}",
            f"{dense.batch1_ms / c.fp32.batch1_ms:.2f}x / {dense.batch1_ms / c.int8.batch1_ms:.2f}x",
            f"{dense.batch_ms / c.fp32.batch_ms:.2f}x / {dense.batch_ms / c.int8.batch_ms:.2f}x",
        ])  # fmt: skip
    headers = ["network", "GMACs", "params (M)", "fp32 top-1 %", "INT8 top-1 %", "fp32 MiB", "INT8 MiB",
               "b1 ms fp32 / INT8", f"b{batch} ms fp32 / INT8", "b1 speed-up fp32 / INT8",
               f"b{batch} speed-up fp32 / INT8"]  # fmt: skip
    return markdown_table(headers, cells)


if __name__ == "__main__":
    raise SystemExit(main())
