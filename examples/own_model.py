"""Prune your own model with your own data and evaluation, through the Python API (no YAML, no model zoo).

    .venv/bin/python examples/own_model.py [--episodes 60] [--method amc] [--out runs/example]

A small CNN of "yours" is trained for one epoch on Fashion-MNIST read by your own loader (plain numpy from the idx
files; any DataLoader works), then amc finds per-layer channel counts that halve its MACs, removes those channels,
you fine-tune with your own loop, and the pruned network and its schedule are exported. About two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import amc

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class MyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.features = nn.Sequential(block(1, 32, 1), block(32, 64, 2), block(64, 64, 1), block(64, 128, 2))
        self.classifier = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path) as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def my_loaders(root: Path = FASHION_MNIST) -> tuple[DataLoader, DataLoader]:
    """Training images and a held-out slice of them for scoring candidates (keep the test set for the end)."""
    images = torch.from_numpy(read_idx(root / "train-images-idx3-ubyte.gz").copy()).float().div(255).unsqueeze(1)
    labels = torch.from_numpy(read_idx(root / "train-labels-idx1-ubyte.gz").astype(np.int64))
    images = (images - 0.2860) / 0.3530
    train = TensorDataset(images[:20000], labels[:20000])
    held_out = TensorDataset(images[-2000:], labels[-2000:])
    return DataLoader(train, batch_size=128, shuffle=True), DataLoader(held_out, batch_size=500)


def train_one_epoch(model: nn.Module, loader: DataLoader, lr: float) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    decay = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=len(loader))
    model.train()
    for images, labels in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
        decay.step()
    model.eval()


def accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum((model(x).argmax(1) == y).sum().item() for x, y in loader)
    return hits / len(loader.dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--method", default="amc")
    parser.add_argument("--out", type=Path, default=Path("runs/example"))
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    train_loader, held_out = my_loaders()
    model = MyNet()
    train_one_epoch(model, train_loader, lr=0.05)
    print(f"my model: {accuracy(model, held_out):.2%} on the held-out images")

    task = amc.prepare(
        model, (1, 28, 28), lambda candidate: accuracy(candidate, held_out),
        method=args.method, cost_model="macs", budget=0.5, calibration=train_loader,
        settings={"search.episodes": args.episodes, "agent.warmup_episodes": args.episodes // 3},
    )  # fmt: skip
    result = amc.search_strategy(task, args.out / "search", resume=(args.out / "search" / "episodes.csv").exists())
    pruned = amc.apply(task, result.best)
    print(f"pruned to {result.best_cost / result.budget.dense_cost:.0%} of the MACs: {accuracy(pruned, held_out):.2%}")
    train_one_epoch(pruned, train_loader, lr=0.01)
    print(f"after my fine-tuning: {accuracy(pruned, held_out):.2%}")
    exported = amc.export(pruned, args.out / "final", result.best, (1, 28, 28))
    print(f"wrote {exported.weights}, {exported.onnx} and the Distiller schedule {exported.schedule_yaml}")
    rebuilt = amc.load_pruned(MyNet(), exported.folder)
    print(f"reloaded from your own MyNet(): {accuracy(rebuilt, held_out):.2%}")


if __name__ == "__main__":
    main()
