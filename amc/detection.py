"""Pruning a detector's backbone through the Python API: the view a search prunes, and saving the result.

`amc.prepare(detector, (3, 128, 128), evaluate, backbone="backbone.body")` searches the backbone only (see
amc.graph.detector); the user's `evaluate(detector) -> float` scores each candidate on the whole thinned
detector. A detector does not hold in `torch.export` (its transform and NMS depend on the data), so the thinned
detector is saved as a state dict beside its strategy, and reloaded by thinning a freshly built dense detector
with that strategy before loading the weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import cast

import torch
from torch import nn

from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.graph.detector import DetectorView, backbone_only, check_detector, detector_view
from amc.pruning import Strategy, prune_network

STATE_FILE = "detector_state.pt"
STRATEGY_FILE = "strategy.json"
INFO_FILE = "detector.json"
SCHEMA = 1


def backbone_view(
    detector: nn.Module, input_size: tuple[int, int, int], backbone: str, model_name: str = "custom"
) -> tuple[DetectorView, LayerTable]:
    """The view over a copy of `detector` and its layer table (backbone groups prunable only), checked first:
    the detector thinned to half its backbone channels must still detect, before any search starts."""
    view = detector_view(detector, backbone)
    table = backbone_only(build_layer_table(view, input_size, model_name), view)
    half = prune_network(view, table, Strategy.uniform(table, 0.5).kept_channels(table)).model
    check_detector(cast(DetectorView, half).detector, input_size)
    return view, table


def on_detector(evaluate: Callable[[nn.Module], float]) -> Callable[[nn.Module], float]:
    """`evaluate(detector)` as a score of the view a search hands over (BatchNorm already re-estimated)."""

    def score(view: nn.Module) -> float:
        return evaluate(cast(DetectorView, view).detector)

    return score


def save_detector(pruned: nn.Module, folder: str | Path, strategy: Strategy) -> Path:
    """Write the thinned detector (`amc.apply`'s view, or its `.detector`) as a state dict plus `strategy`.

    Checked first: the detector must still return boxes, scores and labels for each image.
    """
    if not isinstance(pruned, DetectorView):
        raise UserError(
            f"save_detector takes what amc.apply returns for a detector task, not a {type(pruned).__name__}.",
            fix="pass amc.apply(task, strategy) of a task prepared with backbone=...",
        )
    size = strategy.metadata.input_size
    if size is None:
        raise UserError(
            "save_detector: the strategy does not say the input size it was searched at.",
            fix="pass the strategy the search returned (result.best) or one made from the task's layer table.",
        )
    check_detector(pruned.detector, size)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(pruned.detector.state_dict(), out / STATE_FILE)
    strategy.save(out / STRATEGY_FILE)
    info = {"schema": SCHEMA, "backbone": pruned.backbone, "input_size": list(size)}
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return out


def load_detector(detector: nn.Module, folder: str | Path) -> nn.Module:
    """The thinned detector saved in `folder`, rebuilt from `detector` (built as the original was, e.g. with
    `weights=None`; not touched): thinned by the saved strategy, then given the saved weights (loaded with
    `weights_only=True`)."""
    source = Path(folder)
    missing = [name for name in (STATE_FILE, STRATEGY_FILE, INFO_FILE) if not (source / name).is_file()]
    if missing:
        raise UserError(
            f"{source} is not a saved detector (missing {', '.join(missing)}).",
            fix="point at the folder amc.save_detector wrote.",
        )
    info = json.loads((source / INFO_FILE).read_text())
    if info.get("schema") != SCHEMA:
        raise UserError(
            f"{source / INFO_FILE} has schema {info.get('schema')!r}; this amc reads schema {SCHEMA}.",
            fix="load it with the amc version that wrote it.",
        )
    size = cast(tuple[int, int, int], tuple(int(v) for v in info["input_size"]))
    strategy = Strategy.load(source / STRATEGY_FILE)
    view = detector_view(detector, str(info["backbone"]))
    table = backbone_only(build_layer_table(view, size, strategy.metadata.model), view)
    thinned = cast(DetectorView, prune_network(view, table, strategy.kept_channels(table)).model).detector
    state = torch.load(source / STATE_FILE, map_location=next(thinned.parameters()).device, weights_only=True)
    try:
        thinned.load_state_dict(state)
    except RuntimeError as error:
        raise UserError(
            f"{source / STATE_FILE} does not fit {type(detector).__name__} thinned by its strategy: "
            f"{str(error).splitlines()[0]}",
            fix="build the detector as the saved one was built (same builder, classes and sizes).",
        ) from None
    check_detector(thinned, size)
    return thinned.eval()
