"""The run folder every search method writes, so runs of different methods compare side by side.

    config.yaml          the resolved config, as run
    episodes.csv         one row per episode / trial / candidate: keep ratios, cost, accuracy, reward, times
    best_strategy.json   the best strategy within the budget so far (rewritten atomically on improvement); element-wise
                         searches write best_densities.json (per-layer weight densities) instead, bit-width
                         searches best_bits.json (amc.quantize.LayerBits), joint searches both best_strategy.json
                         and best_bits.json
    best_schedule.yaml   the same as a Distiller-style schedule (channels or densities; bits have none)
    summary.json         dense vs best: cost, measured latency, search-val accuracy, wall time
    plots/               progress over episodes, per-layer keep ratios of the best strategy
    best_history/        each new best as it was found, named by its row in episodes.csv (<row>-best_strategy.json)
    .lock                held by the search writing the folder (amc.locks): one writer at a time

Rows are appended and flushed as they come; on --resume the file is cut back to what the method's own
checkpoint covers, so an episode that was in flight when the run was killed is neither lost twice nor duplicated.
A torn last line (the kill came mid-write) is dropped. A new best is archived under best_history/ before its row
is appended and copied to best_strategy.json after, so a kill between the two writes is repaired on resume: the
best is the best of the kept rows, restored from its archive, whatever the kill left in best_strategy.json.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amc.config import ExperimentConfig, save_config
from amc.errors import UserError
from amc.io import atomic_write_json, atomic_write_text
from amc.problem import JointResult, Result
from amc.pruning import LayerDensities, Strategy
from amc.quantize import LayerBits
from amc.schedule import save_schedule

BEST_FILES: dict[type, str] = {
    JointResult: "best_strategy.json",  # first: a joint result is a strategy with its bits beside it
    Strategy: "best_strategy.json",
    LayerDensities: "best_densities.json",
    LayerBits: "best_bits.json",
}
HISTORY = "best_history"

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
        if not resume and recorded_rows(folder.path):  # a folder without any episode is no earlier run
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
        return recorded_rows(self.path)

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.columns)
        for row in rows:
            writer.writerow([row.get(column, "") for column in self.columns])
        atomic_write_text(self.path / "episodes.csv", buffer.getvalue())
        self.rows_written = len(rows)

    def append(self, row: EpisodeRow, result: Result | None = None) -> bool:
        """Append one row (flushed to disk); returns True when it is the new best (and saves it). A new best is
        archived before the row is written and copied to the best files after, so a resume can repair either."""
        improved = self.best_row is None or row.reward > self.best_row.reward
        if improved and result is not None:
            result.save(self._archived(self.rows_written + 1, type(result)))
        with (self.path / "episodes.csv").open("a", newline="") as handle:
            csv.writer(handle).writerow(row.as_csv(self.columns))
            handle.flush()
        self.rows_written += 1
        if improved and result is not None:
            self.best_row = row
            self.save_best(result)
        return improved

    def _archived(self, position: int, kind: type) -> Path:
        return self.path / HISTORY / f"{position}-{BEST_FILES[kind]}"

    def save_best(self, result: Result) -> None:
        self.best_result = result
        result.save(self.path / BEST_FILES[type(result)])
        schedule = result.strategy if isinstance(result, JointResult) else result
        if not isinstance(schedule, LayerBits):
            save_schedule(schedule, self.path / "best_schedule.yaml")

    def restore_best(self) -> None:
        """After a resume: the best row within the budget and the best result from what is already on disk
        (rows over the budget, NetAdapt's intermediate candidates, never win)."""
        self._drop_archives_after(self.rows_written)
        saved = [(kind, self.path / name) for kind, name in BEST_FILES.items() if _saved(kind, self.path / name)]
        rows = [(position, row) for position, row in enumerate(self.episode_rows(), 1) if row.cost <= row.budget]
        if not rows:
            return
        position, self.best_row = max(rows, key=lambda item: item[1].reward)
        archived = [(kind, self._archived(position, kind)) for kind in BEST_FILES]
        archived = [(kind, path) for kind, path in archived if _saved(kind, path)]
        if archived:  # the best of the kept rows, whatever a kill left in the best files: rewrite them from it
            kind, path = archived[0]
            self.save_best(_load(kind, path))
        elif saved:  # a folder written before best_history/
            kind, path = saved[0]
            self.best_result = _load(kind, path)
        else:
            self.best_row = None

    def _drop_archives_after(self, rows: int) -> None:
        """Archived bests of rows cut from episodes.csv (or never written: the kill came before the row)."""
        history = self.path / HISTORY
        for path in history.glob("*-best_*.json") if history.is_dir() else []:
            number = path.name.split("-", 1)[0]
            if number.isdigit() and int(number) > rows:
                path.unlink()

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


def _saved(kind: type, path: Path) -> bool:
    """Whether a result of `kind` is saved at `path` (a joint result needs its bits beside the strategy)."""
    return JointResult.saved_at(path) if kind is JointResult else path.is_file()


def _load(kind: type, path: Path) -> Result:
    loaders: dict[type, Callable[[Path], Result]] = {
        JointResult: JointResult.load, Strategy: Strategy.load, LayerDensities: LayerDensities.load,
        LayerBits: LayerBits.load,
    }  # fmt: skip
    return loaders[kind](path)


def recorded_rows(folder: Path) -> list[dict[str, str]]:
    """The finished rows of `folder`/episodes.csv as {column: text}: a torn last line (no line end, or too few
    fields: the run was killed while writing it) is dropped, not read as a finished episode."""
    path = Path(folder) / "episodes.csv"
    if not path.is_file():
        return []
    text = path.read_text()
    lines = list(csv.reader(io.StringIO(text)))
    if not lines:
        return []
    header, body = lines[0], lines[1:]
    if body and (not text.endswith("\n") or len(body[-1]) != len(header)):
        body = body[:-1]
    for number, cells in enumerate(body, 2):
        if len(cells) != len(header):
            raise UserError(
                f"{path} line {number} has {len(cells)} fields, not the header's {len(header)}: the file was edited "
                "or written by two runs at once.",
                fix="restore the file, or start the search over in another --out.",
            )
    return [dict(zip(header, cells)) for cells in body]


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
