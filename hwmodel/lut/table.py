"""The latency LUT file: measured entries keyed by `LayerSpec.key()`, a device fingerprint, calibrated overheads.

JSON only (never pickle), versioned, written atomically (temporary file + os.replace) so an interrupted build
never leaves a half-written table. Layout:

    {"schema": "amc-latency-lut", "schema_version": 1, "spec_key_version": 1, "backend": "torch",
     "fingerprint": {...}, "settings": {"warmup": 10, "repeats": 30, "threads": 1, "batch": 1},
     "entries": {"<LayerSpec.key()>": {"median_ms", "iqr_ms", "min_ms", "repeats", "spec": {...}}},
     "overheads": {"<structure key>": {"model", "input_size", "offset_ms", "scale", "samples", "mape_before",
                                       "mape_after"}}}

`settings.batch` (the batch every entry and whole-network run is measured at) is 1 in files written before it
existed; a torch-cuda table also records `cudnn_benchmark` (1 on, 0 off) and `device_index`; an INT8 table records
`precision_bits` 8 (its units timed as QDQ INT8 graphs, its entries keyed with dtype int8). A table without
`precision_bits` is float32, as every file written before INT8 tables existed.

A per-network overhead (scale and offset) is keyed by the network's *structure* (every layer's spec without its
channel counts), so it applies to every pruned variant of the network it was fitted on and to no other network.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hwmodel.errors import HwModelError
from hwmodel.lut.fingerprint import BACKENDS, CUDA_BACKEND, check_precision, device_fingerprint
from hwmodel.lut.timing import Measurement
from hwmodel.spec import FULL_PRECISION_BITS, SPEC_KEY_VERSION, LayerSpec

LUT_SCHEMA = "amc-latency-lut"
LUT_SCHEMA_VERSION = 1
MAX_ENTRY_MS = 1e6
"""Largest believable layer time or offset (over 16 minutes per layer): anything above is a corrupt entry."""
MAX_SCALE = 100.0
"""Largest believable per-network scale (fits are clipped to [0.5, 2]; see `hwmodel.lut.fidelity.SCALE_RANGE`)."""
PRECISION_BITS = {"fp32": 32, "int8": 8}
"""`settings.precision_bits` of each precision (absent: fp32)."""
UNIT_DTYPES = {"fp32": "float32", "int8": "int8"}
"""The `LayerSpec.dtype` a table of each precision keys and times its entries as."""


@dataclass(frozen=True)
class NetworkOverhead:
    """measured ≈ scale x LUT sum + offset_ms for one network structure, fitted on `samples` whole-network runs.

    mape_before / mape_after: the fit's error on those runs without / with scale and offset (in %).
    """

    model: str
    input_size: tuple[int, ...]
    offset_ms: float
    samples: int
    mape_before: float
    mape_after: float
    scale: float = 1.0

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "offset_ms": self.offset_ms,
            "samples": self.samples,
            "mape_before": self.mape_before,
            "mape_after": self.mape_after,
            "scale": self.scale,
        }


@dataclass
class LatencyTable:
    """A LUT in memory. Mutable on purpose: builds and on-demand measurements add entries, then `save`."""

    backend: str
    fingerprint: dict[str, str]
    settings: dict[str, int]
    entries: dict[str, Measurement] = field(default_factory=dict)
    specs: dict[str, LayerSpec] = field(default_factory=dict)
    overheads: dict[str, NetworkOverhead] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        backend: str,
        threads: int,
        warmup: int,
        repeats: int,
        batch: int = 1,
        *,
        cudnn_benchmark: bool = True,
        device_index: int = 0,
        precision: str = "fp32",
    ) -> LatencyTable:
        """An empty table fingerprinted for this machine (cudnn_benchmark, device_index: torch-cuda only;
        precision: fp32, or int8 on a backend that runs QDQ graphs)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise HwModelError(f"a LUT's batch is {batch!r}.", fix="use a whole number >= 1 (--batch, default 1).")
        check_precision(backend, precision)
        settings = {"warmup": warmup, "repeats": repeats, "threads": threads, "batch": batch}
        if backend == CUDA_BACKEND:
            settings |= {"cudnn_benchmark": int(cudnn_benchmark), "device_index": device_index}
        if precision != "fp32":
            settings["precision_bits"] = PRECISION_BITS[precision]
        table = cls(backend, {}, settings)
        table.fingerprint = device_fingerprint(backend, threads, batch, **table.backend_options())
        return table

    @property
    def batch(self) -> int:
        """The batch the table's entries and whole-network runs are measured at."""
        return self.settings.get("batch", 1)

    @property
    def precision(self) -> str:
        """What the entries were timed as: fp32, or int8 (QDQ INT8 graphs)."""
        return _precision_of(self.settings.get("precision_bits", PRECISION_BITS["fp32"]))

    @property
    def runtime(self) -> str:
        """The backend as reports name it: `onnxruntime`, or `onnxruntime int8` for an INT8 table."""
        return self.backend if self.precision == "fp32" else f"{self.backend} {self.precision}"

    def backend_options(self) -> dict[str, Any]:
        """The settings besides threads, warm-up and repeats that its backend (and fingerprint) is created with:
        torch-cuda's cuDNN mode and device, an INT8 table's precision."""
        options: dict[str, Any] = {} if self.precision == "fp32" else {"precision": self.precision}
        if self.backend != CUDA_BACKEND:
            return options
        return options | {
            "cudnn_benchmark": bool(self.settings.get("cudnn_benchmark", 1)),
            "device_index": self.settings.get("device_index", 0),
        }

    def unit_spec(self, spec: LayerSpec) -> LayerSpec:
        """The entry `spec` is priced by: the dense layer (CPUs do not skip zeros) at the table's precision.

        An fp32 table keeps the spec as it is (its keys are those of every earlier file) and refuses an int8 layer;
        an INT8 table prices every layer as an INT8 unit (dtype int8, bits left to the dtype: CPU INT8 kernels run
        8 bits whatever narrower width a spec names).
        """
        dense = spec if spec.sparsity_pattern == "dense" else spec.with_density(1.0)
        if self.precision == "fp32":
            if dense.dtype == UNIT_DTYPES["int8"]:
                raise HwModelError(
                    f"an fp32 latency table cannot price the int8 layer {dense.key()}.",
                    fix="build an INT8 LUT (`amc lut build ... --precision int8`, cost.precision: int8) and price "
                    "with that one.",
                )
            return dense
        dtype = UNIT_DTYPES[self.precision]
        if dense.dtype == dtype and not dense.quantized:
            return dense
        return replace(dense, dtype=dtype, weight_bits=FULL_PRECISION_BITS, activation_bits=FULL_PRECISION_BITS)

    def add(self, spec: LayerSpec, measurement: Measurement) -> None:
        key = spec.key()
        self.entries[key] = measurement
        self.specs[key] = spec

    def to_dict(self) -> dict[str, object]:
        return {
            "schema": LUT_SCHEMA,
            "schema_version": LUT_SCHEMA_VERSION,
            "spec_key_version": SPEC_KEY_VERSION,
            "backend": self.backend,
            "fingerprint": dict(self.fingerprint),
            "settings": dict(self.settings),
            "entries": {
                key: {**value.to_dict(), "spec": self.specs[key].to_dict()}
                for key, value in sorted(self.entries.items())
            },
            "overheads": {key: value.to_dict() for key, value in sorted(self.overheads.items())},
        }

    def save(self, path: str | Path) -> None:
        """Write atomically: a reader sees the old file or the new one, never half of one."""
        target = Path(path)
        try:
            text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        except ValueError:
            raise HwModelError(
                f"refusing to write LUT file {target}: an entry or overhead is NaN or Infinity (not valid JSON).",
                fix="re-measure it: rebuild the LUT with `amc lut build` on an idle machine.",
            ) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(handle, "w") as stream:
                stream.write(text)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read and validate a LUT file; every problem names the file, the field and the fix."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise HwModelError(f"LUT file {path} does not exist.", fix="build one with `amc lut build`.") from None
        except (OSError, json.JSONDecodeError) as error:
            raise HwModelError(
                f"LUT file {path} is not readable JSON ({error}).",
                fix="rebuild it with `amc lut build` (LUTs are JSON written by amc; never edit them by hand).",
            ) from None
        return _parse(data, path)


def _bad(path: Path, field_name: str, value: object, fix: str) -> HwModelError:
    return HwModelError(f"LUT file {path}: field {field_name!r} is {value!r}.", fix=fix)


def _parse(data: Any, path: Path) -> LatencyTable:
    rebuild = "rebuild it with `amc lut build`."
    if not isinstance(data, dict) or data.get("schema") != LUT_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise _bad(path, "schema", found, f"this is not an amc latency LUT ({LUT_SCHEMA!r}); {rebuild}")
    version = data.get("schema_version")
    if not isinstance(version, int) or version != LUT_SCHEMA_VERSION:
        newer = isinstance(version, int) and version > LUT_SCHEMA_VERSION
        fix = "upgrade amc to read it, or " if newer else ""
        raise _bad(
            path, "schema_version", version, f"this amc reads schema_version {LUT_SCHEMA_VERSION}; {fix}{rebuild}"
        )
    if data.get("spec_key_version") != SPEC_KEY_VERSION:
        raise _bad(
            path,
            "spec_key_version",
            data.get("spec_key_version"),
            f"its entries are keyed by another LayerSpec key version (this amc uses {SPEC_KEY_VERSION}); {rebuild}",
        )
    backend = data.get("backend")
    if backend not in BACKENDS:
        raise _bad(path, "backend", backend, f"use one of {', '.join(BACKENDS)}; {rebuild}")
    fingerprint = data.get("fingerprint")
    if not isinstance(fingerprint, dict):
        raise _bad(path, "fingerprint", fingerprint, rebuild)
    settings = data.get("settings")
    if not isinstance(settings, dict) or not all(
        isinstance(settings.get(k), int) for k in ("warmup", "repeats", "threads")
    ):
        raise _bad(path, "settings", settings, f"it needs integer warmup, repeats and threads; {rebuild}")
    settings = {"batch": 1, **settings}  # files from before the batch was recorded were measured at batch 1
    if backend == CUDA_BACKEND:
        settings = {"cudnn_benchmark": 1, "device_index": 0, **settings}
    for key, low, high in (("batch", 1, None), ("cudnn_benchmark", 0, 1), ("device_index", 0, None)):
        value = settings.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            allowed = "0 or 1" if high == 1 else f"a whole number >= {low}"
            raise _bad(path, f"settings.{key}", value, f"it must be {allowed}; {rebuild}")
    _check_precision_setting(path, backend, settings)
    table = LatencyTable(backend, {str(k): str(v) for k, v in fingerprint.items()}, dict(settings))
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise _bad(path, "entries", type(entries).__name__, rebuild)
    dtype = UNIT_DTYPES[table.precision]
    for key, entry in entries.items():
        table.entries[key], table.specs[key] = _entry(path, key, entry)
        if (table.specs[key].dtype == UNIT_DTYPES["int8"]) != (dtype == UNIT_DTYPES["int8"]):
            raise _bad(
                path, f"entries.{key}.spec.dtype", table.specs[key].dtype,
                f"a {table.precision} table holds {dtype} entries only; {rebuild}",
            )  # fmt: skip
    overheads = data.get("overheads", {})
    if not isinstance(overheads, dict):
        raise _bad(path, "overheads", type(overheads).__name__, rebuild)
    for key, overhead in overheads.items():
        try:
            table.overheads[key] = NetworkOverhead(
                str(overhead["model"]),
                tuple(overhead["input_size"]),
                float(overhead["offset_ms"]),
                int(overhead["samples"]),
                float(overhead["mape_before"]),
                float(overhead["mape_after"]),
                float(overhead.get("scale", 1.0)),
            )
        except (KeyError, TypeError, ValueError):
            raise _bad(path, f"overheads.{key}", overhead, "re-run `amc lut calibrate`.") from None
        _check_overhead(path, key, table.overheads[key])
    return table


def _precision_of(bits: int) -> str:
    return next(name for name, value in PRECISION_BITS.items() if value == bits)


def _check_precision_setting(path: Path, backend: str, settings: dict[str, Any]) -> None:
    """`settings.precision_bits`: absent or 32 (fp32, dropped so the file reads back as written) or 8 (int8, on a
    backend that times INT8)."""
    bits = settings.get("precision_bits", PRECISION_BITS["fp32"])
    allowed = " or ".join(f"{value} ({name})" for name, value in PRECISION_BITS.items())
    if isinstance(bits, bool) or bits not in PRECISION_BITS.values():
        raise _bad(path, "settings.precision_bits", bits, f"it must be {allowed}; rebuild it with `amc lut build`.")
    if bits == PRECISION_BITS["fp32"]:
        settings.pop("precision_bits", None)
    try:
        check_precision(backend, _precision_of(bits))
    except HwModelError as error:
        raise _bad(path, "settings.precision_bits", bits, f"{error.problem} Rebuild it with `amc lut build`.") from None


def _check_overhead(path: Path, key: str, overhead: NetworkOverhead) -> None:
    """Scale a positive finite factor, offset finite and not absurd (a fitted offset may be slightly negative),
    at least one whole-network run; everything a network's price is made of is checked here, once, on load."""
    fix = "re-run `amc lut calibrate` for that network (or delete the entry under overheads)."
    if not 0 < overhead.scale <= MAX_SCALE:
        raise _bad(path, f"overheads.{key}.scale", overhead.scale, f"a scale must be in (0, {MAX_SCALE:g}]; {fix}")
    if not -MAX_ENTRY_MS <= overhead.offset_ms <= MAX_ENTRY_MS:
        raise _bad(
            path, f"overheads.{key}.offset_ms", overhead.offset_ms, f"an offset must be a finite number of ms; {fix}"
        )
    if overhead.samples < 1:
        raise _bad(path, f"overheads.{key}.samples", overhead.samples, f"a fit needs whole-network runs; {fix}")


def _entry(path: Path, key: str, entry: Any) -> tuple[Measurement, LayerSpec]:
    where = f"entries.{key}"
    fix = "delete the entry (it is re-measured on demand) or rebuild the LUT with `amc lut build`."
    try:
        measurement = Measurement(
            float(entry["median_ms"]), float(entry["iqr_ms"]), float(entry["min_ms"]), int(entry["repeats"])
        )
        spec = LayerSpec.from_dict(entry["spec"])
    except (KeyError, TypeError, ValueError) as error:
        raise _bad(path, where, entry, f"({error}) {fix}") from None
    for name in ("median_ms", "iqr_ms", "min_ms"):
        value = getattr(measurement, name)
        median = name == "median_ms"
        if not (value > 0 if median else value >= 0) or not value <= MAX_ENTRY_MS:  # NaN fails every comparison
            limits = f"{'> 0' if median else '>= 0'} and at most {MAX_ENTRY_MS:g} ms"
            raise _bad(path, f"{where}.{name}", entry[name], f"a time must be a finite number {limits}; {fix}")
    if measurement.repeats < 1:
        raise _bad(path, f"{where}.repeats", entry["repeats"], f"at least 1 timed repeat is needed; {fix}")
    if spec.key() != key:
        raise _bad(path, f"{where}.spec", entry["spec"], f"the spec does not match its key; {fix}")
    return measurement, spec


def structure_of(specs: Sequence[LayerSpec]) -> tuple[tuple[object, ...], ...]:
    """Each layer without its channel counts: the same for every channel-pruned variant of one network."""
    return tuple(
        (
            s.op,
            s.kernel,
            s.stride,
            s.padding,
            s.dilation,
            s.in_hw,
            s.batch,
            s.dtype,
            s.fused,
            s.groups if s.op == "gconv" else 0,
        )
        for s in specs
    )


def structure_key(specs: Sequence[LayerSpec]) -> str:
    """A short stable text key of `structure_of(specs)`, for the LUT's overheads."""
    return hashlib.sha1(repr(structure_of(specs)).encode()).hexdigest()[:16]
