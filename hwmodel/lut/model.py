"""`lut:<file>`: latency (ms) looked up in a measured table, with missing entries measured on demand.

A network's latency is its calibrated scale x the sum of its layers' entries + its calibrated offset
(`NetworkOverhead`); `bind(specs)` gives a model for the network it prices, whose layer costs carry that scale
(the model bound is left as it was, and every binding shares its one table and file).

The file is read once; a lookup is a dict hit. A spec that is not in the table is measured here and now (no
interpolation across channel counts: latency is a staircase), added, and written back at most every
`save_every_s` seconds and on `flush()`. Fine-grained weight sparsity is priced as the dense layer: CPUs do not
skip zeros (wrap the model in `sparse:` for hardware that does). An INT8 table prices every layer as its INT8 unit
(`LatencyTable.unit_spec`); `require_precision` refuses a table of the other precision than a budget asks for.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hwmodel.base import CachedCostModel
from hwmodel.errors import HwModelError
from hwmodel.lut.fingerprint import CUDA_BACKEND, device_fingerprint, fingerprint_mismatches
from hwmodel.lut.table import LatencyTable, NetworkOverhead, structure_key, structure_of
from hwmodel.lut.timing import Measurement, interleaved
from hwmodel.spec import LayerSpec

if TYPE_CHECKING:
    from hwmodel.lut.backends import Backend

CHUNK = 32
"""Units prepared and interleaved at once: enough to spread each one's rounds over seconds, few enough to hold."""

FOREIGN_FIX = (
    "build a LUT on this machine with `amc lut build`, or pass allow_foreign=True (CLI: --allow-foreign-lut) "
    "to use it anyway."
)


def check_device(table: LatencyTable, path: Path | str, allow_foreign: bool) -> bool:
    """True if the table was measured elsewhere (and that is allowed, with a warning); raise if not allowed."""
    try:
        current = device_fingerprint(table.backend, table.settings["threads"], table.batch, **table.backend_options())
    except HwModelError as error:  # a torch-cuda table where torch sees no GPU: foreign, like any other device
        if table.backend != CUDA_BACKEND:
            raise
        gpu = table.fingerprint.get("gpu_name", "a GPU")
        if not allow_foreign:
            raise HwModelError(f"LUT file {path} was measured on {gpu}, and {error.problem}", fix=FOREIGN_FIX) from None
        warnings.warn(
            f"using LUT {path} measured on {gpu} without that GPU here: its latencies describe that GPU, and "
            "entries it lacks cannot be measured here.",
            RuntimeWarning,
            stacklevel=3,
        )
        return True
    mismatches = fingerprint_mismatches(table.fingerprint, current)
    if not mismatches:
        return False
    detail = "; ".join(f"{field} is {stored!r} in the file but {here!r} here" for field, stored, here in mismatches)
    if not allow_foreign:
        raise HwModelError(f"LUT file {path} was measured on another device or setup: {detail}.", fix=FOREIGN_FIX)
    warnings.warn(
        f"using LUT {path} from another device or setup ({detail}): its latencies describe that device, and "
        "entries it lacks cannot be measured here.",
        RuntimeWarning,
        stacklevel=3,
    )
    return True


def require_precision(table: LatencyTable, path: Path | str | None, precision: str) -> None:
    """Refuse a table timed at another precision than `precision`: an fp32 LUT never prices an INT8 budget, nor an
    INT8 LUT a float one."""
    if table.precision == precision:
        return
    raise HwModelError(
        f"LUT {path or '<in memory>'} times its layers as {table.precision}, but {precision} latency was asked for.",
        fix=f"build an {precision} LUT (`amc lut build ... --precision {precision}`; in a config cost.precision: "
        f"{precision} with cost.model: lut:auto builds it) and use that one.",
    )


@dataclass
class _Shared:
    """What every binding of one LUT shares besides its table: the measuring backend (created on first use) and
    the file's write-back state, so an entry one binding measured is saved by whichever binding flushes."""

    backend: Backend | None = None
    dirty: bool = False
    saved_at: float = field(default_factory=time.monotonic)
    measured_on_demand: int = 0


class LutCostModel(CachedCostModel):
    """Measured per-layer latency plus the calibrated per-network overhead of the network being priced.

    Unbound, a layer costs its entry as timed alone; `bind(specs)` returns a model whose layer costs are scaled
    for that network. Scale and offset are read from the table on every use, so `set_overhead` (on any binding)
    takes effect everywhere at once.
    """

    def __init__(
        self,
        table: LatencyTable,
        path: Path | str | None = None,
        *,
        foreign: bool = False,
        measure_missing: bool = True,
        warmup: int | None = None,
        repeats: int | None = None,
        save_every_s: float = 10.0,
    ) -> None:
        super().__init__(f"lut:{path}" if path else "lut:<in memory>", "latency")
        self.table = table
        self.path = Path(path) if path else None
        self.foreign = foreign
        self.measure_missing = measure_missing
        self.warmup = table.settings["warmup"] if warmup is None else warmup
        self.repeats = table.settings["repeats"] if repeats is None else repeats
        self.save_every_s = save_every_s
        self._shared = _Shared()
        self._bound: str | None = None
        self._keys: dict[tuple[tuple[object, ...], ...], str] = {}

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        allow_foreign: bool = False,
        measure_missing: bool = True,
        warmup: int | None = None,
        repeats: int | None = None,
        save_every_s: float = 10.0,
    ) -> LutCostModel:
        """Load `path` once, refusing (or, with allow_foreign, warning about) a table from another device."""
        table = LatencyTable.load(path)
        foreign = check_device(table, path, allow_foreign)
        return cls(
            table,
            path,
            foreign=foreign,
            measure_missing=measure_missing,
            warmup=warmup,
            repeats=repeats,
            save_every_s=save_every_s,
        )

    @property
    def backend(self) -> Backend:
        """The measuring backend (imported and created on first use: torch / onnxruntime load only if needed)."""
        if self._shared.backend is None:
            from hwmodel.lut.backends import create_backend

            self._shared.backend = create_backend(
                self.table.backend,
                self.table.settings["threads"],
                self.warmup,
                self.repeats,
                **self.table.backend_options(),
            )
        return self._shared.backend

    @property
    def measured_on_demand(self) -> int:
        """Entries measured on this machine since the LUT was opened (by any of its bindings)."""
        return self._shared.measured_on_demand

    @property
    def scale(self) -> float:
        """The calibrated scale of the network this model is bound to (1 unbound or uncalibrated)."""
        overhead = self.table.overheads.get(self._bound) if self._bound is not None else None
        return overhead.scale if overhead else 1.0

    def bind(self, specs: Sequence[LayerSpec]) -> LutCostModel:
        """A model pricing layers as they run inside the network whose (any variant's) specs are `specs`: each
        entry times that network's calibrated scale, so a layer sum plus the offset is that network's latency.

        The new model shares this one's table, file and backend (what it measures lands in the one table) and has
        its own caches; this model is left as it was.
        """
        bound = copy.copy(self)
        bound._cache = {}
        bound._keys = {}
        bound._bound = structure_key(specs)
        return bound

    def missing_layers(self, specs: Sequence[LayerSpec]) -> list[LayerSpec]:
        """The layers of `specs` (as priced: dense, at the table's precision) that the table has no entry for."""
        units = (self.table.unit_spec(spec) for spec in specs)
        return [spec for spec in units if spec.key() not in self.table.entries]

    def require_network(self, specs: Sequence[LayerSpec], name: str, action: str) -> None:
        """Refuse a LUT that lacks layers of the unpruned network `specs` (named `name`): a LUT of another model
        (or input size), which `action` would otherwise fill by measuring here and writing into its file."""
        missing = self.missing_layers(specs)
        if not missing:
            return
        built_for = sorted({overhead.model for overhead in self.table.overheads.values()})
        of = f"; it was built for {', '.join(built_for)}" if built_for else ""
        raise HwModelError(
            f"LUT {self.path or '<in memory>'} has no entry for {len(missing)} of the {len(specs)} layers of "
            f"{name} (first: {missing[0].key()}){of}: it is a LUT of another model or input size, and {action} "
            "would measure the missing layers here and write them into it.",
            fix=f"build a LUT for {name} first (`amc lut build --model {name} --out FILE`, with its --dataset or "
            "--input-size) and use that one, or name the model and input size this LUT was built for.",
        )

    def entry_ms(self, spec: LayerSpec) -> float:
        """The layer timed alone (measured now if missing): the table's number, without any network's scale."""
        unit = self.table.unit_spec(spec)
        entry = self.table.entries.get(unit.key())
        if entry is None:
            entry = self.measure(unit)
        return entry.median_ms

    def _price(self, spec: LayerSpec) -> float:
        return self.entry_ms(spec)

    def layer_cost(self, spec: LayerSpec) -> float:
        """The layer's entry (cached) times the bound network's scale."""
        return self.scale * super().layer_cost(spec)

    def _check_measurable_here(self, spec: LayerSpec) -> None:
        if not self.measure_missing or self.foreign:
            why = "it was measured on another device" if self.foreign else "on-demand measurement is off"
            raise HwModelError(
                f"LUT {self.path} has no entry for {spec.key()} and {why}.",
                fix="build the LUT for this model on this machine with `amc lut build`.",
            )

    def measure(self, spec: LayerSpec) -> Measurement:
        """Measure `spec` (as its unit at the table's precision) on this machine now and add it to the table
        (written back on the next save)."""
        spec = self.table.unit_spec(spec)
        self._check_measurable_here(spec)
        measurement = self.backend.measure_layer(spec)
        self.table.add(spec, measurement)
        self._shared.measured_on_demand += 1
        self._shared.dirty = True
        if time.monotonic() - self._shared.saved_at >= self.save_every_s:
            self.flush()
        return measurement

    def measure_many(
        self, specs: Sequence[LayerSpec], rounds: int = 3, done: Callable[[int], object] | None = None
    ) -> None:
        """Measure the specs not yet in the table, interleaved (see `timing.interleaved`), CHUNK units at a time.

        `done(n)` is called after each chunk with the number of specs it measured (for a progress bar).
        """
        missing = list({spec.key(): spec for spec in self.missing_layers(specs)}.values())
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            for spec in chunk:
                self._check_measurable_here(spec)
            timers = [self.backend.layer_timer(spec) for spec in chunk]
            for spec, measurement in zip(chunk, interleaved(timers, self.repeats, rounds)):
                self.table.add(spec, measurement)
            self._shared.dirty = True
            if time.monotonic() - self._shared.saved_at >= self.save_every_s:
                self.flush()
            if done:
                done(len(chunk))

    def flush(self) -> None:
        """Write entries measured since the last save back to the file (atomically)."""
        if self._shared.dirty and self.path is not None:
            self.table.save(self.path)
            self._shared.dirty = False
        self._shared.saved_at = time.monotonic()

    def network_overhead(self, specs: Sequence[LayerSpec]) -> float:
        """The calibrated offset (ms) of this network's structure (0 if it was never calibrated).

        Raises if that network was calibrated with a scale but this model is not bound to it: the layer costs
        would be the wrong ones for the offset.
        """
        structure = structure_of(specs)
        key = self._keys.get(structure)
        if key is None:
            key = self._keys[structure] = structure_key(specs)
        overhead = self.table.overheads.get(key)
        if overhead is None:
            return 0.0
        if overhead.scale != 1.0 and self._bound != key:
            raise HwModelError(
                f"LUT {self.path}: {overhead.model} is calibrated as {overhead.scale:.3f} x layer sum + "
                f"{overhead.offset_ms:+.3f} ms, but this cost model prices layers for another network.",
                fix="price it with the LUT bound to the network: lut.bind(layer_table.specs()).",
            )
        return overhead.offset_ms

    def set_overhead(self, specs: Sequence[LayerSpec], overhead: NetworkOverhead) -> None:
        """Record the overhead fitted for the network whose (any variant's) specs are `specs` (in the shared table:
        every binding to that network prices with it from now on)."""
        self.table.overheads[structure_key(specs)] = overhead
        self._shared.dirty = True
