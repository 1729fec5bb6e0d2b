"""Plots people would rather look at than read: search progress, per-layer keep ratios (AMC paper style), and
for comparisons accuracy vs measured latency and several strategies' keep ratios side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from amc.pruning import Strategy  # noqa: E402


def plot_search_progress(
    episodes: Sequence[int], accuracies: Sequence[float], rewards: Sequence[float], path: Path
) -> None:
    """Reward and search-val accuracy (in [0, 1]) per episode, with the running best."""
    if not episodes:
        return
    accuracy = [100 * value for value in accuracies]
    reward = list(rewards)
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


@dataclass(frozen=True)
class ParetoPoint:
    label: str
    """The series (method) the point belongs to."""
    latency_ms: float
    accuracy: float
    """In [0, 1]."""


def plot_pareto(points: Sequence[ParetoPoint], dense: ParetoPoint, path: Path, ylabel: str,
                budget_ms: float | None = None, title: str = "") -> None:  # fmt: skip
    """Accuracy vs measured latency, one colour per method, the dense model marked and the non-dominated front
    (faster and more accurate than any other point) drawn as a staircase."""
    fig, axis = plt.subplots(figsize=(7, 5))
    for index, label in enumerate(dict.fromkeys(point.label for point in points)):
        series = [point for point in points if point.label == label]
        axis.scatter([p.latency_ms for p in series], [100 * p.accuracy for p in series], label=label,
                     color=f"C{index}", marker="os^Dvp<>h"[index % 9], s=40, zorder=3)  # fmt: skip
    front = _front([*points, dense])
    axis.step([p.latency_ms for p in front], [100 * p.accuracy for p in front], where="post", color="0.6",
              linewidth=1, zorder=1, label="Pareto front")  # fmt: skip
    axis.scatter([dense.latency_ms], [100 * dense.accuracy], marker="*", s=200, color="k", label=dense.label, zorder=4)
    if budget_ms is not None:
        axis.axvline(budget_ms, color="C3", linestyle="--", linewidth=1, label="budget")
    axis.set_xlabel("measured latency (ms)")
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(title or "accuracy vs measured latency")
    _save(fig, path)


def _front(points: Sequence[ParetoPoint]) -> list[ParetoPoint]:
    front: list[ParetoPoint] = []
    for point in sorted(points, key=lambda p: (p.latency_ms, -p.accuracy)):
        if not front or point.accuracy > front[-1].accuracy:
            front.append(point)
    return front


def plot_keep_ratios_side_by_side(ratios: Mapping[str, Mapping[str, float]], path: Path, ylabel: str = "keep ratio",
                                  title: str = "") -> None:  # fmt: skip
    """Per-layer ratios of several strategies (label -> layer -> ratio) as grouped bars, layers in first-seen order."""
    layers = list(dict.fromkeys(name for per_layer in ratios.values() for name in per_layer))
    width = 0.8 / max(1, len(ratios))
    fig, axis = plt.subplots(figsize=(max(7, 0.3 * len(layers) * max(1, len(ratios)) ** 0.5), 4))
    for index, (label, per_layer) in enumerate(ratios.items()):
        x = [i - 0.4 + width * (index + 0.5) for i in range(len(layers))]
        axis.bar(x, [per_layer.get(name, float("nan")) for name in layers], width, label=label, color=f"C{index}")
    axis.set_xticks(range(len(layers)))
    axis.set_xticklabels(layers, rotation=90, fontsize=7)
    axis.set_ylim(0, 1.05)
    axis.set_ylabel(ylabel)
    axis.legend(fontsize=8)
    axis.set_title(title or f"{ylabel} per layer")
    _save(fig, path)


def plot_sensitivity(curves: Mapping[str, Sequence[tuple[float, float]]], dense: float, path: Path) -> None:
    """Search-val accuracy of each group pruned alone, against its keep ratio (Distiller's sensitivity plot)."""
    fig, axis = plt.subplots(figsize=(8, 5))
    for name, curve in curves.items():
        keeps, accuracy = zip(*curve)
        axis.plot(keeps, [100 * a for a in accuracy], ".-", label=name)
    axis.axhline(100 * dense, color="black", linestyle="--", linewidth=1, label="dense")
    axis.set_xlabel("keep ratio of the group (others dense)")
    axis.set_ylabel("search-val top-1 (%)")
    axis.invert_xaxis()
    axis.grid(alpha=0.3)
    axis.legend(fontsize=6, ncol=2)
    axis.set_title("sensitivity of each coupling group")
    _save(fig, path)


def plot_granularity_curves(
    accuracy: Mapping[str, Sequence[tuple[float, float]]],
    speedups: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
    dense: float,
    path: Path,
) -> None:
    """Mao et al.'s figure: top-1 against weight sparsity per granularity, and each granularity's simulated
    speed-up under each zero-skipping model (one panel per model)."""
    fig, axes = plt.subplots(1, 1 + len(speedups), figsize=(5 * (1 + len(speedups)), 4.5))
    for name, curve in accuracy.items():
        sparsity, top1 = zip(*curve)
        axes[0].plot([100 * s for s in sparsity], [100 * a for a in top1], "o-", label=name)
    axes[0].axhline(100 * dense, color="black", linestyle="--", linewidth=1, label="dense")
    axes[0].set_xlabel("weight sparsity (%)")
    axes[0].set_ylabel("top-1 (%)")
    axes[0].set_title("accuracy vs sparsity")
    for axis, (model, curves) in zip(axes[1:], speedups.items()):
        for name, curve in curves.items():
            sparsity, speedup = zip(*curve)
            axis.plot([100 * s for s in sparsity], speedup, "o-", label=name)
        axis.axhline(1.0, color="black", linestyle="--", linewidth=1)
        axis.set_xlabel("weight sparsity (%)")
        axis.set_ylabel("simulated speed-up (x)")
        axis.set_title(model, fontsize=8)
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    _save(fig, path)
