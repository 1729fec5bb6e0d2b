"""AGP vs one-shot magnitude pruning at the same final sparsity, and a structured AGP + thinning schedule.

ResNet-20 on Fashion-MNIST from the shipped base model (`model.checkpoint: auto`). Three runs of `amc finetune`'s
schedule runner, each for the same number of epochs:
  agp       element-wise AGP from 0 to S over the epochs (every layer but the stem), Distiller's cubic ramp;
  one-shot  every one of those layers magnitude-pruned to S at epoch 0, then fine-tuned (masks held);
  thinning  configs/schedules/resnet20_filters_agp_thin.yaml: filter AGP with thinning after each firing
            (at least the 5 epochs the schedule needs).
Prints test top-1, the measured sparsity of the pruned layers, output channels and seconds per run; writes
OUT/results.json and each run's folder (model + finetune report).

    .venv/bin/python bench/agp_vs_oneshot.py                                   # S 0.7, 8 epochs, full epochs
    .venv/bin/python bench/agp_vs_oneshot.py --epochs 2 --max-steps 5 --test-images 500   # smoke
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from amc.cli.finetune_cmd import job_settings, loop_trainer
from amc.config import load_config
from amc.graph import build_layer_table
from amc.pruning.finegrained import LayerDensities
from amc.schedule import Schedule, load_schedule, parse_distiller
from amc.schedule.runner import default_epochs, run_schedule, with_timeline
from amc.training.base_model import load_base_model, load_data
from amc.training.loop import TrainSettings, accuracy_on

THINNING = Path(__file__).parents[1] / "configs" / "schedules" / "resnet20_filters_agp_thin.yaml"


def agp_yaml(layers: list[str], sparsity: float, epochs: int) -> str:
    """Element-wise AGP from 0 to `sparsity` on `layers`, firing every epoch 0..epochs-1 (final at the last)."""
    weights = ", ".join(f"module.{name}.weight" for name in layers)
    return (
        f"version: 1\npruners:\n  agp:\n    class: AutomatedGradualPruner\n    initial_sparsity: 0.0\n"
        f"    final_sparsity: {sparsity}\n    weights: [{weights}]\n"
        f"policies:\n  - pruner:\n      instance_name: agp\n    starting_epoch: 0\n    ending_epoch: {epochs}\n"
        "    frequency: 1\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparsity", type=float, default=0.7, help="final element-wise sparsity S")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the AGP and one-shot runs (>= 2)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--max-steps", type=int, help="batches per epoch (default: the whole training split)")
    parser.add_argument("--test-images", type=int, help="test images of the final score (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="default: a temporary folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="agp_vs_oneshot_"))
    config = load_config(None, {"model.name": "resnet20", "data.dataset": "fashion-mnist"})
    bundle = load_data(config)
    base = load_base_model(config, bundle, progress=False)
    table = build_layer_table(base, bundle.input_size, "resnet20")
    pruned = [layer.name for layer in table.layers if layer.name != "conv1"]
    schedules = {
        "agp": parse_distiller(agp_yaml(pruned, args.sparsity, args.epochs), table, "agp", warn=False),
        "one-shot": with_timeline(Schedule(densities=LayerDensities(dict.fromkeys(pruned, 1 - args.sparsity))), table),
        "thinning": load_schedule(THINNING, table, warn=False),
    }
    dense = accuracy_on(base, bundle.test, limit=args.test_images).top1
    print(f"resnet20 / fashion-mnist, base test top-1 {100 * dense:.2f}%; {args.epochs} epochs, lr {args.lr}, "
          f"{args.max_steps or 'all'} steps/epoch, {args.threads} threads -> {out}\n")  # fmt: skip
    print("| run | epochs | test top-1 | sparsity of pruned layers | output channels | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = []
    for name, schedule in schedules.items():
        model = load_base_model(config, bundle, progress=False, log=lambda _: None)
        epochs = max(args.epochs, default_epochs(schedule))
        settings = TrainSettings(epochs=epochs, batch_size=128, lr=args.lr, weight_decay=5e-4, augment=False)
        trainer = loop_trainer(bundle.train, bundle.search_val, settings, max_steps_per_epoch=args.max_steps,
                               val_images=1000, progress=False, log=lambda _: None)  # fmt: skip
        begin = time.perf_counter()
        run = run_schedule(model, table, schedule, out / name, trainer, epochs,
                           job_settings(settings, args.max_steps))  # fmt: skip
        seconds = time.perf_counter() - begin
        top1 = accuracy_on(run.model, bundle.test, limit=args.test_images).top1
        weights = [run.model.get_submodule(layer).weight for layer in pruned]
        zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
        channels = run.epochs[-1].channels
        rows.append(
            {
                "run": name,
                "epochs": epochs,
                "test_top1": top1,
                "sparsity": zeros,
                "channels": channels,
                "seconds": seconds,
            }
        )
        print(f"| {name} | {epochs} | {100 * top1:.2f}% | {zeros:.3f} | {channels} | {seconds:.0f} |")
    (out / "results.json").write_text(json.dumps({"dense_test_top1": dense, "args": vars(args) | {"out": str(out)},
                                                  "runs": rows}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
