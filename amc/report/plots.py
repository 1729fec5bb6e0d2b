"""Plots people would rather look at than read: search progress and per-layer keep ratios (AMC paper style)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from amc.pruning import Strategy  # noqa: E402


def plot_search_progress(rows: Sequence[dict[str, str]], path: Path, budget: object | None = None) -> None:
    """Reward and search-val accuracy per episode, with the running best."""
    if not rows:
        return
    episodes = [int(row["episode"]) for row in rows]
    accuracy = [100 * float(row["accuracy"]) for row in rows]
    reward = [float(row["reward"]) for row in rows]
    best = [max(accuracy[: i + 1]) for i in range(len(accuracy))]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(episodes, accuracy, ".", alpha=0.5, label="episode")
    top.plot(episodes, best, "-", color="C3", label="best so far")
    top.set_ylabel("search-val top-1 (%)")
    top.legend(loc="lower right")
    top.grid(alpha=0.3)
    bottom.plot(episodes, reward, ".", alpha=0.5, color="C2")
    bottom.set_ylabel("reward")
    bottom.set_xlabel("episode")
    bottom.grid(alpha=0.3)
    fig.suptitle("search progress")
    _save(fig, path)


def plot_keep_ratios(strategy: Strategy, path: Path, title: str = "") -> None:
    """Per-layer kept channels as bars over the original counts (the AMC paper's policy figure)."""
    layers = strategy.layers
    fig, axis = plt.subplots(figsize=(max(6, 0.35 * len(layers)), 4))
    x = range(len(layers))
    axis.bar(x, [layer.channels for layer in layers], color="#dddddd", label="original")
    axis.bar(x, [layer.kept for layer in layers], color="C0", label="kept")
    axis.set_xticks(list(x))
    axis.set_xticklabels([layer.name for layer in layers], rotation=90, fontsize=7)
    axis.set_ylabel("output channels")
    axis.legend()
    meta = strategy.metadata
    axis.set_title(title or f"{meta.model}: kept channels per layer (acc {100 * (meta.accuracy or 0):.2f}%)")
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
