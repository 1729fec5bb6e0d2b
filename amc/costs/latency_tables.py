"""Measured latency tables of whole networks: what a search can visit, built, calibrated and validated.

The layer-level machinery (timing backends, the JSON table, fingerprints) is in `hwmodel.lut`; this module
knows networks: which layer variants a search over a model's coupling groups can reach (the same channel
counts the search itself uses), how a per-network overhead is fitted on whole-network runs, and how LUT sums
compare with end-to-end measurements. An INT8 LUT (`precision="int8"`) is the same, its units and networks timed
as QDQ INT8 graphs (`hwmodel.lut.backends`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.locks import lock_file
from amc.models import create_model, model_info
from amc.pruning import candidate_counts, prune_network
from hwmodel.errors import HwModelError
from hwmodel.lut import (
    FidelityReport,
    LatencyTable,
    LutCostModel,
    NetworkOverhead,
    fidelity_report,
    fit_affine,
    mape,
    structure_key,
)
from hwmodel.lut.fingerprint import CUDA_BACKEND
from hwmodel.lut.model import require_precision
from hwmodel.spec import LayerSpec

Kept = dict[int, int]


@dataclass(frozen=True)
class Network:
    """A model to price and measure: its name, the (unpruned) module, its layer table, one input's C,H,W, and the
    batch its layer specs and whole-network runs are measured at (the table must be built at that batch)."""

    name: str
    model: nn.Module
    table: LayerTable
    input_size: tuple[int, int, int]
    batch: int = 1


@dataclass(frozen=True)
class Grid:
    """How a search's channel counts are discretised: multiples of round_to (x group divisor), >= lbound."""

    round_to: int = 8
    lbound: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.round_to, bool) or not isinstance(self.round_to, int) or self.round_to < 1:
            raise UserError(
                f"round_to (--round-to, search.round_to) is {self.round_to!r}; kept channel counts are multiples "
                "of it, so it must be a whole number >= 1.",
                fix="use --round-to 8 (the default) or another whole number >= 1 (1: every channel count).",
            )
        if not 0 < self.lbound <= 1:  # NaN fails too
            raise UserError(
                f"lbound (--lbound, search.lbound) is {self.lbound!r}; it is the smallest keep ratio, in (0, 1].",
                fix="use --lbound 0.2 (the default) or another number in (0, 1].",
            )

    def choices(self, table: LayerTable) -> dict[int, tuple[int, ...]]:
        """Kept counts per group; a group that cannot be pruned keeps all its channels."""
        return {
            group.index: tuple(candidate_counts(group, self.round_to, self.lbound, 1.0))
            if group.prunable
            else (group.channels,)
            for group in table.groups
        }


def load_network(
    model: str,
    size: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    dataset: str | None = None,
    data_root: str | None = None,
    batch: int = 1,
) -> Network:
    """Build `model` for `batch` inputs of C,H,W: given, or the dataset's, or the model's own."""
    if dataset and not size:
        from amc.data import load_dataset

        bundle = load_dataset(dataset, data_root, search_val_size=1)
        size, num_classes = bundle.input_size, num_classes or bundle.num_classes
    size = size or model_info(model).input_size
    module = create_model(model, in_channels=size[0], num_classes=num_classes)
    return Network(model, module, build_layer_table(module, size, model, batch), size, batch)


PRODUCT_LIMIT = 4096
"""A layer whose groups' choices combine in at most this many ways is shaped for each combination; past it (a
concatenation of many groups) the groups are folded in one at a time."""


def reachable_channels(table: LayerTable, index: int, choices: Mapping[int, tuple[int, ...]]) -> set[tuple[int, int]]:
    """Every (in, out) channel count layer `index` takes when each group keeps one of its `choices`, as
    `LayerTable.layer_channels` (the one coupling rule) gives it.

    The layer depends on its output group and the groups feeding it. Few combinations of their choices: each is
    shaped. Many (a concatenation): the groups are assigned one at a time, keeping one assignment per distinct
    shape so far; exact because the rule sees the kept counts only through the shape they give (the inputs are a
    sum over feeding groups), so two assignments of the same shape grow into the same shapes.
    """
    layer = table.layers[index]
    feeding = [group for group, _ in layer.in_sources]
    groups = list(dict.fromkeys(feeding + ([layer.out_group] if layer.out_group is not None else [])))
    if math.prod(len(choices[group]) for group in groups) <= PRODUCT_LIMIT:
        combinations = itertools.product(*(choices[group] for group in groups))
        return {table.layer_channels(index, dict(zip(groups, counts))) for counts in combinations}
    shapes: dict[tuple[int, int], dict[int, int]] = {table.layer_channels(index, {}): {}}
    for group in groups:
        folded: dict[tuple[int, int], dict[int, int]] = {}
        for kept in shapes.values():
            for count in choices[group]:
                trial = {**kept, group: count}
                folded.setdefault(table.layer_channels(index, trial), trial)
        shapes = folded
    return set(shapes)


def search_grid(table: LayerTable, grid: Grid) -> list[LayerSpec]:
    """Every distinct layer variant a search over `grid` can visit (2-D (in, out) grids bounded by lbound)."""
    choices = grid.choices(table)
    found: dict[str, LayerSpec] = {}
    for layer in table.layers:
        spec = layer.spec
        for shape in sorted(reachable_channels(table, layer.index, choices)):
            variant = spec if shape == (spec.in_channels, spec.out_channels) else spec.with_channels(*shape)
            found.setdefault(variant.key(), variant)
    return list(found.values())


def nearest_choice(choices: tuple[int, ...], target: float) -> int:
    """The choice closest to `target` channels (ties: the larger)."""
    return min(choices, key=lambda choice: (abs(choice - target), -choice))


def random_kept(table: LayerTable, grid: Grid, rng: np.random.Generator) -> Kept:
    """A random pruned variant: every group keeps a uniform random ratio in [lbound, 1], rounded to the grid."""
    return {
        index: nearest_choice(options, rng.uniform(grid.lbound, 1.0) * table.groups[index].channels)
        for index, options in grid.choices(table).items()
        if len(options) > 1
    }


BUDGET_BANDS: tuple[tuple[float, float], ...] = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
"""Shares of the dense latency that users' budgets ask for: where searches land, so where a LUT must be right."""


def band_label(band: tuple[float, float]) -> str:
    return f"{100 * band[0]:.0f}-{100 * band[1]:.0f}%"


BAND_ATTEMPTS = 20
"""Random draws tried per band variant: on a coarse channel grid one draw's scaled shapes may step over the band."""


def band_kept(
    table: LayerTable,
    grid: Grid,
    share_of: Callable[[Kept], float],
    band: tuple[float, float],
    rng: np.random.Generator,
) -> Kept | None:
    """A variant whose predicted latency is a random share of dense inside `band`, or None if none is reachable.

    Each group draws a random keep ratio in [lbound, 1]; all are scaled by one factor, found by bisection, so the
    variant's predicted share (`share_of`, e.g. the LUT's layer sum over the dense one) hits a uniform target in
    the band: the random shapes of thin networks a search at that budget returns, not thin and uniform only.
    """
    choices = {index: options for index, options in grid.choices(table).items() if len(options) > 1}
    for _ in range(BAND_ATTEMPTS):
        draws = {index: rng.uniform(grid.lbound, 1.0) for index in choices}
        target = rng.uniform(*band)

        def kept(factor: float, draws: dict[int, float] = draws) -> Kept:
            return {
                index: nearest_choice(
                    options, min(max(factor * draws[index], grid.lbound), 1.0) * table.groups[index].channels
                )
                for index, options in choices.items()
            }

        low, high = 0.0, 1.0 / min(draws.values(), default=1.0)
        for _ in range(30):
            middle = (low + high) / 2
            if share_of(kept(middle)) > target:
                high = middle
            else:
                low = middle
        for found in (kept(low), kept(high)):
            if band[0] <= share_of(found) <= band[1]:
                return found
    return None


POOL_BYTES = 1 << 30
"""Whole networks are timed together (one interleaved pool) up to this many bytes of weights at a time."""


def network_pools(variants: list[Kept], weight_bytes: Callable[[Kept], int], budget: int) -> list[int]:
    """Where to cut `variants` into pools that each hold at most `budget` bytes of weights (at least one network).

    Networks timed in different pools are timed minutes apart, and a shared machine's speed drifts by several
    per cent over minutes (`bench/timing_conditions.py`): one pool for as many as memory allows.
    """
    cuts, held = [], 0
    for index, kept in enumerate(variants):
        size = weight_bytes(kept)
        if held and held + size > budget:
            cuts.append(index)
            held = 0
        held += size
    return cuts


def measure_variants(
    lut: LutCostModel,
    network: Network,
    variants: list[Kept],
    rounds: int = 3,
    done: Callable[[int], object] | None = None,
) -> list[float]:
    """End-to-end median latency (ms) of each physically thinned variant, on the LUT's backend and threads, all
    interleaved in `rounds` passes (see `hwmodel.lut.timing.interleaved`), as many at once as `network_pools`
    allows; `done(n)` after each pool."""
    latencies: list[float] = []
    shape = (network.batch, *network.input_size)

    def weight_bytes(kept: Kept) -> int:
        return 4 * sum(spec.params for spec in network.table.specs(kept))

    bounds = [0, *network_pools(variants, weight_bytes, POOL_BYTES), len(variants)]
    for start, stop in zip(bounds, bounds[1:]):
        models = (
            prune_network(network.model, network.table, kept).model for kept in variants[start:stop]
        )  # one thin copy at a time
        latencies += [m.median_ms for m in lut.backend.measure_networks(models, shape, rounds)]
        if done:
            done(stop - start)
    return latencies


def lut_sum(lut: LutCostModel, specs: list[LayerSpec]) -> float:
    """The sum of the layers' entries as timed alone: no per-network scale or offset."""
    return math.fsum(lut.entry_ms(spec) for spec in specs)


def _progress(total: int, description: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=description, unit="net", disable=not enabled, leave=False)


def _measure_entries(lut: LutCostModel, specs: list[LayerSpec], rounds: int, progress: bool) -> None:
    """Measure, interleaved, every layer entry in `specs` that the LUT lacks (before any network run)."""
    missing = {spec.key() for spec in lut.missing_layers(specs)}
    if missing:
        with tqdm(total=len(missing), desc="LUT entries", unit="layer", disable=not progress, leave=False) as bar:
            lut.measure_many(specs, rounds, bar.update)


def _measure_all(
    lut: LutCostModel, network: Network, variants: list[Kept], rounds: int, progress: bool, description: str
) -> tuple[list[list[LayerSpec]], list[float], list[float]]:
    """(layer specs, LUT sum without scale or offset, measured end-to-end ms) of every variant."""
    specs = [network.table.specs(kept) for kept in variants]
    _measure_entries(lut, [spec for variant in specs for spec in variant], rounds, progress)
    sums_ms = [lut_sum(lut, variant) for variant in specs]
    with _progress(len(variants), description, progress) as bar:
        measured = measure_variants(lut, network, variants, rounds, bar.update)
    return specs, sums_ms, measured


def calibration_variants(table: LayerTable, grid: Grid, samples: int, seed: int = 0) -> list[Kept]:
    """The runs a per-network fit is made on: the unpruned network, its smallest variant (every group at lbound:
    the two ends give the scale its leverage) and samples - 2 random variants."""
    rng = np.random.default_rng([seed, 0])
    smallest = {index: options[0] for index, options in grid.choices(table).items() if len(options) > 1}
    variants: list[Kept] = [{}, smallest][:samples]
    return variants + [random_kept(table, grid, rng) for _ in range(samples - len(variants))]


def fit_overhead(network: Network, predicted: list[float], measured: list[float]) -> NetworkOverhead:
    """measured ≈ scale x LUT sum + offset (Theil-Sen, see `fit_affine`) on whole-network runs of `network`."""
    scale, offset = fit_affine(predicted, measured)
    return NetworkOverhead(
        network.name,
        network.input_size,
        offset,
        len(measured),
        mape(predicted, measured),
        mape([scale * p + offset for p in predicted], measured),
        scale,
    )


def calibrate_overhead(
    lut: LutCostModel,
    network: Network,
    samples: int,
    grid: Grid,
    seed: int = 0,
    progress: bool = True,
    rounds: int = 3,
) -> NetworkOverhead:
    """Fit scale and offset on `calibration_variants` and store the fit in the LUT's table (a model bound to the
    network prices with it from then on: `lut.bind(network.table.specs())`)."""
    variants = calibration_variants(network.table, grid, samples, seed)
    _, predicted, measured = _measure_all(lut, network, variants, rounds, progress, "calibrating")
    overhead = fit_overhead(network, predicted, measured)
    lut.set_overhead(network.table.specs(), overhead)
    lut.flush()
    return overhead


@dataclass(frozen=True)
class BandFidelity:
    """The fidelity on variants whose predicted latency is `label` of the dense network's (a budget band)."""

    label: str
    report: FidelityReport


@dataclass(frozen=True)
class Validation:
    """What `amc lut validate` found: the LUT's fidelity with the fit it was judged with, and that fit.

    fitted_alongside: the fit was made on calibration runs timed in the same pool as the validated variants (so
    both see the machine at the same speed); `stored` is then the fidelity the LUT's stored fit (made when the
    LUT was calibrated, maybe on a faster or slower spell of the machine) would have had.
    """

    report: FidelityReport
    fit: NetworkOverhead | None
    fitted_alongside: bool
    stored: FidelityReport | None
    bands: tuple[BandFidelity, ...] = ()
    """The same figures per budget band (variants drawn at 30-60% of dense), judged with the same fit."""

    def to_dict(self) -> dict[str, object]:
        """The `--json` object: the report's keys, then the fit's and the stored fit's figures, then the bands."""
        found: dict[str, object] = dict(self.report.to_dict())
        found["bands"] = {band.label: band.report.to_dict() for band in self.bands}
        found["fit"] = "alongside" if self.fitted_alongside else ("stored" if self.fit else "none")
        found["scale"] = self.fit.scale if self.fit else 1.0
        found["offset_ms"] = self.fit.offset_ms if self.fit else 0.0
        if self.stored:
            found["stored_fit_mape"] = self.stored.mape
            found["stored_fit_within_10pct"] = self.stored.within_10pct
        return found


def validate_lut(
    lut: LutCostModel,
    network: Network,
    samples: int,
    grid: Grid,
    seed: int = 0,
    progress: bool = True,
    rounds: int = 3,
    calibrate: int = 5,
    band_samples: int = 0,
) -> Validation:
    """LUT prediction vs end-to-end measurement of `samples` random pruned variants, and of `band_samples`
    variants in each budget band (`BUDGET_BANDS`, reported per band: searches land there, at the thin end).

    With `calibrate` > 0 the scale and offset are fitted on that many `calibration_variants` timed in the same
    interleaved pool as the validated ones (which are not among them), so a drift of the machine's speed
    between calibrating and validating is not counted as LUT error; the stored fit is scored too. With 0 the
    LUT's stored fit is used (none: the plain layer sum).
    """
    if samples < 2:
        raise UserError(f"--samples {samples} is too few to rank.", fix="use --samples 2 or more (50 for a report).")
    if calibrate == 1 or calibrate < 0:
        raise UserError(
            f"--calibrate {calibrate} cannot fit a scale and an offset.",
            fix="use --calibrate 2 or more (5 by default), or 0 for the LUT's stored fit.",
        )
    if band_samples == 1 or band_samples < 0:
        raise UserError(
            f"--band-samples {band_samples} cannot rank the variants of a budget band.",
            fix="use --band-samples 2 or more (10 by default), or 0 for random variants only.",
        )
    lut.require_network(network.table.specs(), network.name, "`amc lut validate`")
    rng = np.random.default_rng([seed, 1])
    variants = [random_kept(network.table, grid, rng) for _ in range(samples)]
    labels = ["random"] * samples
    if band_samples:
        _measure_entries(lut, search_grid(network.table, grid), rounds, progress)
        dense_sum = lut_sum(lut, network.table.specs())

        def share_of(kept: Kept) -> float:
            return lut_sum(lut, network.table.specs(kept)) / dense_sum

        band_rng = np.random.default_rng([seed, 2])
        for band in BUDGET_BANDS:
            drawn = [band_kept(network.table, grid, share_of, band, band_rng) for _ in range(band_samples)]
            # distinct only: near the grid's thin end most draws land on the same few variants, and copies of one
            # variant would fill the band's error and ranking with ties
            reachable = list({tuple(sorted(kept.items())): kept for kept in drawn if kept is not None}.values())
            variants += reachable
            labels += [band_label(band)] * len(reachable)
    calibration = calibration_variants(network.table, grid, calibrate, seed)
    specs, sums_ms, measured = _measure_all(lut, network, calibration + variants, rounds, progress, "validating")
    lut.flush()
    totals, truth = sums_ms[calibrate:], measured[calibrate:]
    macs = [sum(spec.macs for spec in variant) for variant in specs[calibrate:]]
    stored = lut.table.overheads.get(structure_key(network.table.specs()))
    fit = fit_overhead(network, sums_ms[:calibrate], measured[:calibrate]) if calibrate else stored
    predicted = _predict(fit, totals) if fit else totals

    def report(label: str | None) -> FidelityReport:
        chosen = [i for i, name in enumerate(labels) if label is None or name == label]
        return fidelity_report([predicted[i] for i in chosen], [truth[i] for i in chosen], [macs[i] for i in chosen])

    bands = tuple(
        BandFidelity(band_label(band), report(band_label(band)))
        for band in BUDGET_BANDS
        if labels.count(band_label(band)) >= 2
    )
    random_report = report("random")
    if not calibrate:
        return Validation(random_report, stored, False, None, bands)
    random_truth = [truth[i] for i, name in enumerate(labels) if name == "random"]
    random_macs = [macs[i] for i, name in enumerate(labels) if name == "random"]
    stored_totals = [totals[i] for i, name in enumerate(labels) if name == "random"]
    stored_report = fidelity_report(_predict(stored, stored_totals), random_truth, random_macs) if stored else None
    return Validation(random_report, fit, True, stored_report, bands)


def _missing(lut: LutCostModel, network: Network, specs: list[LayerSpec], calibrate: int) -> bool:
    """Whether the LUT lacks a layer variant of the grid, or (with `calibrate`) the network's overhead fit."""
    todo = bool(lut.missing_layers(specs))
    return todo or bool(calibrate and structure_key(network.table.specs()) not in lut.table.overheads)


def _plan(network: Network, path: Path, specs: list[LayerSpec], todo: int, grid: Grid, how: str) -> str:
    return (
        f"{network.name} {'x'.join(map(str, network.input_size))}: {len(network.table.layers)} layers, "
        f"{len(network.table.groups)} channel groups; channel counts are multiples of {grid.round_to} down to a "
        f"keep ratio of {grid.lbound} -> {len(specs)} layer variants, {len(specs) - todo} already in {path}; "
        f"measuring {todo} on this machine ({how})"
    )


def _build_missing(
    lut: LutCostModel, network: Network, path: Path, specs: list[LayerSpec], grid: Grid, threads: int,
    repeats: int, calibrate: int, progress: bool, log: Callable[[str], None], rounds: int,
) -> None:  # fmt: skip
    todo = lut.missing_layers(specs)
    log(_plan(network, path, specs, len(todo), grid, f"{lut.table.runtime}, {threads} thread(s), {repeats} repeats"))
    if todo:
        try:
            with tqdm(total=len(todo), desc="LUT", unit="layer", disable=not progress, leave=False) as bar:
                lut.measure_many(todo, rounds, bar.update)
        finally:
            lut.flush()
    if calibrate and structure_key(network.table.specs()) not in lut.table.overheads:
        calibrate_overhead(lut, network, calibrate, grid, progress=progress, rounds=rounds)


def _predict(fit: NetworkOverhead, sums_ms: list[float]) -> list[float]:
    return [fit.scale * total + fit.offset_ms for total in sums_ms]


def open_for_build(
    path: Path, backend: str, threads: int, warmup: int, repeats: int, save_every_s: float, batch: int = 1,
    cudnn_benchmark: bool = True, precision: str = "fp32",
) -> LutCostModel:  # fmt: skip
    """Resume the LUT at `path` if it exists (same device, settings and precision), else start an empty one."""
    if not path.exists():
        table = LatencyTable.create(
            backend, threads, warmup, repeats, batch, cudnn_benchmark=cudnn_benchmark, precision=precision
        )
        return LutCostModel(table, path, save_every_s=save_every_s)
    lut = LutCostModel.open(path, save_every_s=save_every_s)
    require_precision(lut.table, path, precision)
    wanted = {"backend": backend, "threads": threads, "warmup": warmup, "repeats": repeats, "batch": batch}
    if backend == CUDA_BACKEND:
        wanted["cudnn_benchmark"] = int(cudnn_benchmark)
    found = {"backend": lut.table.backend, **lut.table.settings}
    differing = [f"{key} {found[key]!r} (asked {value!r})" for key, value in wanted.items() if found[key] != value]
    if differing:
        raise HwModelError(
            f"LUT file {path} exists with other settings: {', '.join(differing)}.",
            fix="repeat the flags it was built with to resume it, or write to another --out.",
        )
    return lut


def build_lut(
    network: Network,
    path: Path,
    backend: str = "torch",
    threads: int = 1,
    grid: Grid | None = None,
    warmup: int = 10,
    repeats: int = 30,
    calibrate: int = 5,
    progress: bool = True,
    log: Callable[[str], None] = print,
    save_every_s: float = 30.0,
    rounds: int = 3,
    cudnn_benchmark: bool = True,
    precision: str = "fp32",
) -> LutCostModel:
    """Open the LUT at `path` (resuming it), measure every variant missing for `grid` (interleaved in `rounds`
    passes) at the network's batch, fit the overhead once; the LUT comes back bound to the network.
    `cudnn_benchmark`: cuDNN's benchmark mode, for the torch-cuda backend only; `precision`: fp32, or int8 (units
    and networks timed as QDQ INT8 graphs; an existing LUT of the other precision is refused)."""
    grid = grid or Grid()
    specs = search_grid(network.table, grid)
    lut = open_for_build(path, backend, threads, warmup, repeats, save_every_s, network.batch, cudnn_benchmark,
                         precision)  # fmt: skip
    if _missing(lut, network, specs, calibrate):
        # One builder at a time (`<lut>.lock`); reopened under the lock, as another may have finished it meanwhile.
        with lock_file(path, "latency table (LUT)"):
            lut = open_for_build(path, backend, threads, warmup, repeats, save_every_s, network.batch,
                                 cudnn_benchmark, precision)  # fmt: skip
            _build_missing(lut, network, path, specs, grid, threads, repeats, calibrate, progress, log,
                           rounds)  # fmt: skip
    else:
        log(_plan(network, path, specs, 0, grid, f"{lut.table.runtime}, {threads} thread(s), {repeats} repeats"))
    return lut.bind(network.table.specs())
