"""The cost model a config names, ready for a search on one network.

`lut:auto` is this machine's measured latency table for the configured model and input size, cached under
$AMC_CACHE/luts and built on demand (every layer variant the search can visit, then the per-network overhead
fitted on a few whole-network runs), so the demo prices real latency on a fresh machine. With `cost.precision:
int8` it is the INT8 table (units and networks timed as QDQ INT8 graphs), in a file of its own; a `lut:<file>` of
the other precision than `cost.precision` is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from amc.config import AUTO_LUT, ExperimentConfig, resolve_round_to
from amc.graph import LayerTable
from amc.training.checkpoints import cache_dir
from hwmodel import CostModel, create_cost_model
from hwmodel.lut.fingerprint import TIMING_METHOD
from hwmodel.lut.model import LutCostModel, require_precision
from hwmodel.sparse import SparseModel

LUT_THREADS = 1
"""LUTs are measured on one thread: the figure is stable when the other core is busy, and it is the setting
latency-bound deployment uses."""


def auto_lut_path(config: ExperimentConfig, input_size: tuple[int, int, int]) -> Path:
    safe = config.model.name.replace(":", "-")
    size = "x".join(map(str, input_size))
    precision = "" if config.cost.precision == "fp32" else f"__{config.cost.precision}"  # fp32 names as before
    name = f"{safe}__{size}__{config.cost.lut_backend}{precision}__t{LUT_THREADS}__timing{TIMING_METHOD}.json"
    return cache_dir() / "luts" / name


def make_cost_model(
    config: ExperimentConfig, model: nn.Module, table: LayerTable, progress: bool = True,
    log: Callable[[str], None] = print,
) -> CostModel:  # fmt: skip
    name = config.cost.model
    if name == AUTO_LUT:
        from amc.costs.latency_tables import Grid, Network, build_lut

        path = auto_lut_path(config, table.input_size)
        network = Network(config.model.name, model, table, table.input_size)
        return build_lut(
            network, path, backend=config.cost.lut_backend, threads=LUT_THREADS,
            grid=Grid(resolve_round_to(config), config.search.lbound), progress=progress, log=log,
            precision=config.cost.precision,
        )  # fmt: skip
    if name.startswith("lut:"):
        found = create_cost_model(name, allow_foreign=config.cost.allow_foreign_lut)
    else:
        found = create_cost_model(name)
    lut = measured_table(found)
    if lut is not None:
        require_precision(lut.table, lut.path, config.cost.precision)
    return found


def measured_table(cost_model: CostModel) -> LutCostModel | None:
    """The measured LUT a cost model prices with (itself, or the base of a sparse: wrapper), or None."""
    base = cost_model.base if isinstance(cost_model, SparseModel) else cost_model
    return base if isinstance(base, LutCostModel) else None


def bound_to(cost_model: CostModel, table: LayerTable) -> CostModel:
    """The cost model priced for this network (a measured LUT, also one under a sparse: wrapper, with the network's
    calibrated scale); `cost_model` itself is left as it was. A LUT file lacking layers of the network (a LUT of
    another model) is refused rather than filled in by the search."""
    lut = measured_table(cost_model)
    if lut is not None and lut.path is not None:
        lut.require_network(table.specs(), table.model_name, "a search pricing with it")
    return cost_model.bind(table.specs())
