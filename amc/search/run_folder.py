"""The run folder every search method writes, so runs of different methods compare side by side.

    config.yaml          the resolved config, as run
    episodes.csv         one row per episode / trial / candidate: keep ratios, cost, accuracy, reward, times
    best_strategy.json   the best strategy within the budget so far (rewritten atomically on improvement); element-wise
                         searches write best_densities.json (per-layer weight densities) instead
    best_schedule.yaml   the same as a Distiller-style schedule
    summary.json         dense vs best: cost, measured latency, search-val accuracy, wall time
    plots/               progress over episodes, per-layer keep ratios of the best strategy

Rows are appended and flushed as they come; on --resume the file is cut back to what the method's own
checkpoint covers, so an episode that was in flight when the run was killed is neither lost twice nor duplicated.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amc.config import ExperimentConfig, save_config
from amc.errors import UserError
from amc.io import atomic_write_json, atomic_write_text
from amc.problem import Result
from amc.pruning import LayerDensities, Strategy
from amc.schedule import save_schedule

BEST_FILES = {Strategy: "best_strategy.json", LayerDensities: "best_densities.json"}

BASE_COLUMNS = (
    "episode",
    "reward",
    "accuracy",
    "cost",
    "budget",
    "wall_s",
    "eval_s",
    "prune_s",
    "tune_s",
    "cost_s",
    "agent_s",
)


@dataclass
class EpisodeRow:
    """One scored candidate of a search."""

    episode: int
    reward: float
    accuracy: float
    cost: float
    budget: float
    keep_ratios: Sequence[float]
    wall_s: float
    timings: dict[str, float] = field(default_factory=dict)

    def as_csv(self, columns: Sequence[str]) -> list[str]:
        values: dict[str, Any] = {
            "episode": self.episode, "reward": self.reward, "accuracy": self.accuracy, "cost": self.cost,
            "budget": self.budget, "wall_s": self.wall_s, **self.timings,
        }  # fmt: skip
        cells = [_cell(values.get(column, "")) for column in columns[: len(BASE_COLUMNS)]]
        return cells + [_cell(keep) for keep in self.keep_ratios]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class RunFolder:
    """Writes a search's outputs; `best_row` and `best_result` are the best seen within the budget (by reward)."""

    def __init__(self, path: Path, layer_names: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = (*BASE_COLUMNS, *(f"keep:{name}" for name in layer_names))
        self.best_row: EpisodeRow | None = None
        self.best_result: Result | None = None
        self.rows_written = 0

    @classmethod
    def create(
        cls, path: Path, config: ExperimentConfig, layer_names: Sequence[str], resume: bool, keep_rows: int = 0
    ) -> RunFolder:
        """Start a new run folder, or with `resume` reopen one keeping its first `keep_rows` episode rows."""
        folder = cls(path, layer_names)
        episodes = folder.path / "episodes.csv"
        if episodes.exists() and not resume:
            raise UserError(
                f"run folder {folder.path} already holds a search (episodes.csv).",
                fix="add --resume to continue it, or choose another --out.",
            )
        folder.path.mkdir(parents=True, exist_ok=True)
        save_config(config, folder.path / "config.yaml")
        rows = folder.read_rows()[:keep_rows] if resume and episodes.exists() else []
        folder._rewrite(rows)
        return folder

    # ----------------------------------------------------------------- episodes.csv

    def read_rows(self) -> list[dict[str, str]]:
        path = self.path / "episodes.csv"
        if not path.exists():
            return []
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.columns)
        for row in rows:
            writer.writerow([row.get(column, "") for column in self.columns])
        atomic_write_text(self.path / "episodes.csv", buffer.getvalue())
        self.rows_written = len(rows)

    def append(self, row: EpisodeRow, result: Result | None = None) -> bool:
        """Append one row (flushed to disk); returns True when it is the new best (and saves it)."""
        with (self.path / "episodes.csv").open("a", newline="") as handle:
            csv.writer(handle).writerow(row.as_csv(self.columns))
            handle.flush()
        self.rows_written += 1
        improved = self.best_row is None or row.reward > self.best_row.reward
        if improved and result is not None:
            self.best_row = row
            self.save_best(result)
        return improved

    def save_best(self, result: Result) -> None:
        self.best_result = result
        result.save(self.path / BEST_FILES[type(result)])
        save_schedule(result, self.path / "best_schedule.yaml")

    def restore_best(self) -> None:
        """After a resume: the best row within the budget and the best result from what is already on disk
        (rows over the budget, NetAdapt's intermediate candidates, never win)."""
        saved = [(kind, self.path / name) for kind, name in BEST_FILES.items() if (self.path / name).exists()]
        rows = [row for row in self.episode_rows() if row.cost <= row.budget]
        if not rows or not saved:
            return
        self.best_row = max(rows, key=lambda row: row.reward)
        kind, path = saved[0]
        self.best_result = Strategy.load(path) if kind is Strategy else LayerDensities.load(path)

    def episode_rows(self) -> list[EpisodeRow]:
        """The rows of episodes.csv as records (timings left out)."""
        keep_columns = self.columns[len(BASE_COLUMNS) :]
        return [
            EpisodeRow(
                int(row["episode"]),
                float(row["reward"]),
                float(row["accuracy"]),
                float(row["cost"]),
                float(row["budget"]),
                [float(row[column]) for column in keep_columns if row.get(column)],
                float(row["wall_s"]),
            )  # fmt: skip
            for row in self.read_rows()
        ]

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.path / "summary.json", _finite(summary))


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
