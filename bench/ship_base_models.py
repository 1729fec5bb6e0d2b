"""Copy base models trained by `amc train` into the package and write their manifest; print what is shipped.

    AMC_CACHE=/tmp/shipcache amc train --model resnet20 --dataset fashion-mnist --threads 1   # (and resnet56)
    .venv/bin/python bench/ship_base_models.py --cache /tmp/shipcache --epoch1 resnet20=R20-EPOCH1.state.pt ...

`--epoch1 MODEL=FILE` names a copy of the training state saved after the first epoch of that same run (the
`*.state.pt` file `amc train` rewrites each epoch), so the manifest records the weights after epoch 1 and a slow
test can re-train that epoch and compare (tests/test_shipped_models.py). With no arguments it prints the
manifest as shipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import torch

from amc.config import load_config
from amc.data import load_dataset
from amc.training.checkpoints import base_checkpoint_path, load_checkpoint
from amc.training.shipped import (
    MANIFEST,
    MANIFEST_TYPE,
    MANIFEST_VERSION,
    SPLIT_KEYS,
    WEIGHTS,
    ShippedModel,
    file_sha256,
    shipped_models,
    weights_sha256,
)

DATASET = "fashion-mnist"


def ship(model: str, cache: Path, epoch1: Path) -> ShippedModel:
    import os

    os.environ["AMC_CACHE"] = str(cache)
    config = load_config(None, {"model.name": model, "data.dataset": DATASET})
    source = base_checkpoint_path(model, DATASET, config.train.seed)
    state, meta = load_checkpoint(source)
    first = torch.load(epoch1, map_location="cpu", weights_only=True)
    if int(first["epoch"]) != 1:
        raise SystemExit(f"{epoch1} is the state after epoch {first['epoch']}, not 1")
    test_images = len(load_dataset(DATASET).test)  # type: ignore[arg-type]
    target = WEIGHTS / source.name
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return ShippedModel(
        file=target.name, model=model, dataset=DATASET,
        train=json.loads(json.dumps(dataclasses.asdict(config.train))),
        data={key: getattr(config.data, key) for key in SPLIT_KEYS},
        command=f"amc train --model {model} --dataset {DATASET} --threads {meta['threads']}",
        threads=int(meta["threads"]), torch=torch.__version__.split("+")[0], file_sha256=file_sha256(target),
        weights_sha256=weights_sha256(state), epoch1_weights_sha256=weights_sha256(first["model"]),
        test_top1=float(meta["test_top1"]), test_top5=float(meta["test_top5"]), test_images=test_images,
        train_seconds=float(meta["train_seconds"]),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, help="the AMC_CACHE the models were trained into")
    parser.add_argument("--epoch1", nargs="*", default=[], help="MODEL=FILE: the state after epoch 1 of that run")
    args = parser.parse_args()
    if args.epoch1:
        entries = [ship(*item.split("=", 1)[:1], args.cache, Path(item.split("=", 1)[1])) for item in args.epoch1]
        manifest = {"_type": MANIFEST_TYPE, "_version": MANIFEST_VERSION,
                    "models": [dataclasses.asdict(entry) for entry in entries]}  # fmt: skip
        MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    print("| model | dataset | test top-1 | top-5 | file | size | SHA-256 | trained in | command |")
    print("| --- | --- | ---: | ---: | --- | ---: | --- | ---: | --- |")
    for shipped in shipped_models():
        size = shipped.path.stat().st_size / 1e6
        print(
            f"| {shipped.model} | {shipped.dataset} | {100 * shipped.test_top1:.2f}% | {100 * shipped.test_top5:.2f}% "
            f"| {shipped.file} | {size:.2f} MB | {shipped.file_sha256[:16]}… | {shipped.train_seconds:.0f} s "
            f"({shipped.threads} thread) | `{shipped.command}` |"
        )


if __name__ == "__main__":
    main()
