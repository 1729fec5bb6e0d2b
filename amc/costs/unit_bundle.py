"""Latency tables for devices amc cannot run on: export a unit bundle, time it there, import the results.

`export_bundle` writes every layer unit a search over a model can visit (the same `search_grid` `amc lut build`
measures) as a small ONNX file, the NCHWc round-trip models ONNX Runtime's border correction needs, whole
thinned networks to calibrate and validate with, a manifest with the sha256 of every file, and the standalone
runner (`hwmodel/lut/runner_script.py`, stdlib + numpy + the runtime only). The models carry no weights: their
large initializers are ONNX external data in .bin files the bundle does not hold, which the runner writes from
seeded random numbers on the device (`externalize`; only shapes matter for a timing). `import_results` turns the
runner's results.json into a LUT: entries, the device's fingerprint (not this machine's), the per-network fit on the
calibration networks, and its fidelity on the validation networks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from amc.costs.latency_tables import (
    Grid,
    Kept,
    Network,
    calibration_variants,
    fit_overhead,
    load_network,
    random_kept,
    search_grid,
)
from amc.errors import UserError
from amc.pruning import prune_network
from hwmodel.lut import FidelityReport, LatencyTable, Measurement, NetworkOverhead, fidelity_report, structure_key
from hwmodel.lut.fingerprint import TIMING_METHOD
from hwmodel.spec import LayerSpec

MANIFEST_SCHEMA = "amc-unit-bundle"
MANIFEST_SCHEMA_VERSION = 2
"""2: weights are ONNX external data the runner writes on the device (`externalize`); 1 embedded them."""
RESULTS_SCHEMA = "amc-unit-bundle-results"
RESULTS_SCHEMA_VERSION = 1
RUNTIMES = ("onnxruntime", "openvino")
RUNNER_NAME = "amc_lut_runner.py"
OWN_PARTS = ("unit", "rt", "net", "manifest.json", RUNNER_NAME)
"""What an export writes into its folder (and, with force, replaces)."""
EMBED_BYTES = 1024
"""Float initializers this size or larger become external data; smaller ones (biases, BN parameters of narrow
layers, Clip bounds) stay in the model file."""
EXTERNAL_ALIGN = 4096
"""Offsets of external tensors within their weights file are multiples of this (as onnx aligns large ones)."""


@dataclass(frozen=True)
class TimingSettings:
    """How the runner times (recorded in the manifest; the runner may be told otherwise, and records that)."""

    threads: int = 1
    warmup: int = 10
    repeats: int = 30
    rounds: int = 3

    def __post_init__(self) -> None:
        if min(self.threads, self.repeats, self.rounds) < 1 or self.warmup < 0:
            raise UserError(
                f"bad timing settings: threads={self.threads}, warmup={self.warmup}, repeats={self.repeats}, "
                f"rounds={self.rounds}.",
                fix="use threads, repeats and rounds >= 1 and warmup >= 0 (30 repeats or more for a real LUT).",
            )


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    units: int
    round_trips: int
    networks: int
    files: int
    bytes: int


def amc_version() -> str:
    try:
        return importlib.metadata.version("amc-toolkit")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def runner_source() -> str:
    """The standalone runner's source, read from the package (it is never imported here)."""
    return importlib.resources.files("hwmodel.lut").joinpath("runner_script.py").read_text()


def resolve_network(
    model: str,
    size: tuple[int, int, int] | None,
    num_classes: int | None,
    dataset: str | None,
    data_root: str | None,
) -> tuple[Network, int]:
    """The network, and the class count it was built with (recorded so that an import rebuilds the same one)."""
    if dataset and not size:
        from amc.data import load_dataset

        data = load_dataset(dataset, data_root, search_val_size=1)
        size, num_classes = data.input_size, num_classes or data.num_classes
    if num_classes is None:
        from amc.models import model_info

        num_classes = model_info(model).num_classes
    return load_network(model, size, num_classes), num_classes


def _unit_id(spec: LayerSpec) -> str:
    return hashlib.sha1(spec.key().encode()).hexdigest()[:16]


def _shape_name(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _check_folder(out: Path, force: bool) -> None:
    """Refuse to mix a new export into an old bundle; with force, remove only what an export writes."""
    taken = [part for part in OWN_PARTS if (out / part).exists()]
    if taken and not force:
        raise UserError(
            f"--out {out} already holds a unit bundle ({', '.join(taken)}).",
            fix="pass another --out, or --force to replace it (its results.json, if any, is kept but will no "
            "longer match).",
        )
    for part in taken:
        target = out / part
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


def _write(path: Path, data: bytes, hashes: dict[str, str], root: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    hashes[path.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=1, allow_nan=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


Distribution = dict[str, Any]


def unit_distribution(name: str, array: np.ndarray) -> Distribution:
    """The distribution `onnx_unit` draws an initializer from: BN scales and variances uniform(0.5, 1.5) (a
    variance must be positive), everything else standard normal."""
    if name.endswith(("_scale", "_var")):
        return {"dist": "uniform", "low": 0.5, "high": 1.5}
    return {"dist": "normal", "mean": 0.0, "std": 1.0}


def network_distribution(name: str, array: np.ndarray) -> Distribution:
    """A normal distribution with the exported tensor's own mean and spread (so that activations through a whole
    untrained network keep about the magnitudes they had)."""
    return {"dist": "normal", "mean": float(array.mean()), "std": float(array.std())}


def externalize(
    model_bytes: bytes, weights: str, distribution: Callable[[str, np.ndarray], Distribution]
) -> tuple[bytes, dict[str, Any] | None]:
    """The model with every float32 initializer of EMBED_BYTES or more stored as ONNX external data in the file
    `weights` (a name in the model's folder, which the bundle does not carry), and what the runner needs to write
    that file: its size and, per tensor, offset, length and the distribution to draw its values from. The graph
    (nodes, shapes, attributes) is unchanged: initializers read from external data are still initializers, so
    ONNX Runtime folds and fuses them as before. (bytes, None) when nothing is large enough."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load_model_from_string(model_bytes)
    tensors: list[dict[str, Any]] = []
    offset = 0
    for tensor in model.graph.initializer:
        if tensor.data_type != TensorProto.FLOAT or len(tensor.raw_data) < EMBED_BYTES:
            continue
        array = numpy_helper.to_array(tensor)
        length = len(tensor.raw_data)
        offset = -(-offset // EXTERNAL_ALIGN) * EXTERNAL_ALIGN
        tensors.append({"name": tensor.name, "offset": offset, "length": length, **distribution(tensor.name, array)})
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        del tensor.external_data[:]
        for key, value in (("location", weights), ("offset", str(offset)), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        offset += length
    if not tensors:
        return model_bytes, None
    return model.SerializeToString(), {"bytes": offset, "tensors": tensors}


def _external_entry(folder: str, name: str, found: dict[str, Any] | None) -> dict[str, Any]:
    return {"weights": None} if found is None else {"weights": {"file": f"{folder}/{name}", **found}}


def bundle_networks(
    network: Network, grid: Grid, calibrate: int, validate: int, seed: int
) -> list[tuple[str, str, Kept]]:
    """(name, role, kept channels) of the whole networks a bundle carries: `calibration_variants` to fit the
    per-network scale and offset on, and random variants (drawn as `validate_lut` draws them) to judge it on."""
    rng = np.random.default_rng([seed, 1])
    found = [(f"cal-{i:03d}", "calibration", kept) for i, kept in enumerate(
        calibration_variants(network.table, grid, calibrate, seed)
    )]  # fmt: skip
    return found + [(f"val-{i:03d}", "validation", random_kept(network.table, grid, rng)) for i in range(validate)]


def export_bundle(
    network: Network,
    num_classes: int,
    out: Path,
    grid: Grid,
    runtime: str = "onnxruntime",
    timing: TimingSettings | None = None,
    calibrate: int = 5,
    validate: int = 50,
    seed: int = 0,
    progress: bool = True,
    force: bool = False,
) -> ExportSummary:
    """Write the bundle for `network` into the folder `out`; the manifest last, so a half-written bundle has none
    (and the runner refuses it)."""
    from hwmodel.lut.backends import exported_network, onnx_unit
    from hwmodel.lut.nchwc import round_trip_model

    if runtime not in RUNTIMES:
        raise UserError(f"unknown bundle runtime {runtime!r}.", fix=f"use one of {', '.join(RUNTIMES)}.")
    if calibrate < 2 or validate < 0 or validate == 1:
        raise UserError(
            f"--calibrate {calibrate} / --validate {validate}: a fit needs 2 or more calibration networks and a "
            "ranking 2 or more validation networks.",
            fix="use --calibrate 2 or more (5 by default) and --validate 0 or 2 or more (50 by default).",
        )
    timing = timing or TimingSettings()
    out.mkdir(parents=True, exist_ok=True)
    _check_folder(out, force)
    specs = search_grid(network.table, grid)
    variants = bundle_networks(network, grid, calibrate, validate, seed)
    hashes: dict[str, str] = {}
    units: list[dict[str, Any]] = []
    round_trips: dict[str, dict[str, Any]] = {}
    nets: list[dict[str, Any]] = []
    with tqdm(total=len(specs) + len(variants), desc="bundle", unit="file", disable=not progress) as bar:
        for spec in specs:
            unit = _unit_id(spec)
            model_bytes, example = onnx_unit(spec)
            model_bytes, weights = externalize(model_bytes, f"{unit}.bin", unit_distribution)
            _write(out / "unit" / f"{unit}.onnx", model_bytes, hashes, out)
            borders = {}
            for border, shape in (
                ("input", (spec.batch, spec.in_channels, *spec.in_hw)),
                ("output", (spec.batch, spec.out_channels, *spec.out_hw)),
            ):
                name = _shape_name(shape)
                if name not in round_trips:
                    file = f"rt/{name}.onnx"
                    _write(out / file, round_trip_model(shape), hashes, out)  # type: ignore[arg-type]
                    round_trips[name] = {"file": file, "shape": list(shape)}
                borders[border] = name
            units.append({
                "id": unit, "file": f"unit/{unit}.onnx", "key": spec.key(), "spec": spec.to_dict(),
                "input_shape": list(example.shape), "round_trips": borders,
                **_external_entry("unit", f"{unit}.bin", weights),
            })  # fmt: skip
            bar.update()
        shape = (1, *network.input_size)
        for name, role, kept in variants:
            model = prune_network(network.model, network.table, kept).model
            model_bytes, _ = exported_network(model, shape, timing.threads)
            model_bytes, weights = externalize(model_bytes, f"{name}.bin", network_distribution)
            _write(out / "net" / f"{name}.onnx", model_bytes, hashes, out)
            layer_specs = network.table.specs(kept)
            nets.append({
                "name": name, "file": f"net/{name}.onnx", "role": role, "input_shape": list(shape),
                "kept": {str(group): count for group, count in sorted(kept.items())},
                "spec_keys": [s.key() for s in layer_specs], "macs": sum(s.macs for s in layer_specs),
                **_external_entry("net", f"{name}.bin", weights),
            })  # fmt: skip
            bar.update()
    runner = runner_source().encode()
    (out / RUNNER_NAME).write_bytes(runner)
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "amc_version": amc_version(),
        "timing_method": TIMING_METHOD,
        "model": network.name,
        "input_size": list(network.input_size),
        "num_classes": num_classes,
        "grid": {"round_to": grid.round_to, "lbound": grid.lbound},
        "seed": seed,
        "settings": {"runtime": runtime, **timing.__dict__},
        "structure_key": structure_key(network.table.specs()),
        "units": units,
        "round_trips": round_trips,
        "networks": nets,
        "runner_sha256": hashlib.sha256(runner).hexdigest(),
        "files": dict(sorted(hashes.items())),
    }
    _atomic_json(out / "manifest.json", manifest)
    total = sum((out / name).stat().st_size for name in hashes) + len(runner)
    return ExportSummary(out, len(units), len(round_trips), len(nets), len(hashes) + 2, total)


# ---------------------------------------------------------------- import


@dataclass(frozen=True)
class Imported:
    """What `import_results` made: the LUT, the fit stored in it, and its fidelity on the validation networks."""

    table: LatencyTable
    overhead: NetworkOverhead
    report: FidelityReport | None
    network: str
    grid: Grid


def _refuse(problem: str, fix: str) -> UserError:
    return UserError(problem, fix=fix)


def _read_json(path: Path, what: str, fix: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise _refuse(f"{what} {path} does not exist.", fix) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _refuse(f"{what} {path} is not readable JSON ({error}).", fix) from None


def _measurement(where: str, entry: Any, rerun: str) -> Measurement:
    """A results entry as a Measurement; NaN, infinite, negative or zero times are refused."""
    try:
        found = Measurement(
            float(entry["median_ms"]), float(entry["iqr_ms"]), float(entry["min_ms"]), int(entry["repeats"])
        )
    except (KeyError, TypeError, ValueError):
        raise _refuse(f"results entry {where} is malformed: {entry!r}.", rerun) from None
    times = (found.median_ms, found.iqr_ms, found.min_ms)
    if not all(math.isfinite(t) for t in times) or found.median_ms <= 0 or min(times) < 0 or found.repeats < 1:
        raise _refuse(f"results entry {where} holds an impossible time (NaN, infinite or negative): {entry!r}.", rerun)
    return found


def load_results(results_path: Path, bundle: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, results), checked: same bundle, known schema, complete, every time a finite positive number."""
    runner = f"python {bundle / RUNNER_NAME} {bundle}"
    results = _read_json(results_path, "results file", f"run `{runner}` on the device; it writes results.json.")
    manifest_path = bundle / "manifest.json"
    manifest_bytes = _read_bytes(manifest_path)
    try:
        manifest = json.loads(manifest_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _refuse(
            f"bundle manifest {manifest_path} is not readable JSON ({error}).", "copy the bundle again."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise _refuse(f"{manifest_path} is not an amc unit bundle manifest.", "name the bundle folder with --bundle.")
    if manifest.get("schema_version") != MANIFEST_SCHEMA_VERSION:
        raise _refuse(
            f"{manifest_path} has schema_version {manifest.get('schema_version')!r}; this amc reads "
            f"{MANIFEST_SCHEMA_VERSION}.",
            "import with the amc version that exported the bundle.",
        )
    if not isinstance(results, dict) or results.get("schema") != RESULTS_SCHEMA:
        raise _refuse(f"{results_path} is not a results file of amc_lut_runner.py.", f"run `{runner}` on the device.")
    version = results.get("schema_version")
    if not isinstance(version, int) or version > RESULTS_SCHEMA_VERSION:
        raise _refuse(
            f"{results_path} has schema_version {version!r}; this amc reads results up to version "
            f"{RESULTS_SCHEMA_VERSION}.",
            "upgrade amc, or time the bundle with the runner this amc exported.",
        )
    if results.get("manifest_sha256") != hashlib.sha256(manifest_bytes).hexdigest():
        raise _refuse(
            f"{results_path} holds results of another bundle than {bundle} (the manifest hashes differ): importing "
            "them would price layers with another bundle's times.",
            "import results.json together with the bundle folder it was timed from (--bundle), or time this "
            f"bundle with `{runner}`.",
        )
    missing_units = [u["id"] for u in manifest["units"] if u["id"] not in results.get("units", {})]
    missing_nets = [n["name"] for n in manifest["networks"] if n["name"] not in results.get("networks", {})]
    if missing_units or missing_nets or not results.get("complete"):
        raise _refuse(
            f"{results_path} is incomplete: {len(missing_units)} of {len(manifest['units'])} units and "
            f"{len(missing_nets)} of {len(manifest['networks'])} networks have no measurement yet.",
            f"run `{runner}` again on the device: it resumes where it stopped.",
        )
    return manifest, results


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        raise _refuse(
            f"bundle manifest {path} does not exist.",
            "keep results.json in the bundle folder it was timed from, or name that folder with --bundle.",
        ) from None


def import_results(results_path: Path, bundle: Path | None = None) -> Imported:
    """A LUT from the runner's results: the device's entries and fingerprint, the per-network fit on the
    calibration networks (`fit_overhead`), and the fidelity on the validation networks."""
    bundle = bundle or results_path.parent
    manifest, results = load_results(results_path, bundle)
    rerun = f"delete {results_path} and time the bundle again with `python {bundle / RUNNER_NAME}`."
    settings = results["settings"]
    fingerprint = {str(key): str(value) for key, value in results["fingerprint"].items()}
    table = LatencyTable(
        settings["runtime"],
        fingerprint,
        {
            "warmup": int(settings["warmup"]),
            "repeats": int(settings["repeats"]),
            "threads": int(settings["threads"]),
            "batch": 1,  # every unit and network of a bundle runs one input
        },
    )
    for unit in manifest["units"]:
        spec = LayerSpec.from_dict(unit["spec"])
        if spec.key() != unit["key"]:
            raise _refuse(
                f"bundle unit {unit['id']} is keyed {unit['key']!r} but this amc keys its spec {spec.key()!r}.",
                "import with the amc version that exported the bundle, or export and time it again.",
            )
        table.add(spec, _measurement(f"units.{unit['id']}", results["units"][unit["id"]], rerun))
    network, _ = resolve_network(
        manifest["model"],
        tuple(manifest["input_size"]),
        manifest["num_classes"],
        None,
        None,  # type: ignore[arg-type]
    )
    if structure_key(network.table.specs()) != manifest["structure_key"]:
        raise _refuse(
            f"{manifest['model']} as this amc builds it is not the network the bundle was exported from.",
            "import with the amc version that exported the bundle, or export and time it again.",
        )
    grid = Grid(int(manifest["grid"]["round_to"]), float(manifest["grid"]["lbound"]))
    uncovered = [spec.key() for spec in search_grid(network.table, grid) if spec.key() not in table.entries]
    if uncovered:
        raise _refuse(
            f"the bundle lacks {len(uncovered)} layer variants a search over {manifest['model']} visits "
            f"(first: {uncovered[0]}).",
            "export the bundle again with this amc and time it again.",
        )
    sums, measured, macs, roles = [], [], [], []
    for net in manifest["networks"]:
        sums.append(math.fsum(table.entries[key].median_ms for key in net["spec_keys"]))
        measured.append(_measurement(f"networks.{net['name']}", results["networks"][net["name"]], rerun).median_ms)
        macs.append(float(net["macs"]))
        roles.append(net["role"])
    calibration = [i for i, role in enumerate(roles) if role == "calibration"]
    validation = [i for i, role in enumerate(roles) if role == "validation"]
    overhead = fit_overhead(network, [sums[i] for i in calibration], [measured[i] for i in calibration])
    table.overheads[structure_key(network.table.specs())] = overhead
    report = None
    if len(validation) >= 2:
        predicted = [overhead.scale * sums[i] + overhead.offset_ms for i in validation]
        report = fidelity_report(predicted, [measured[i] for i in validation], [macs[i] for i in validation])
    return Imported(table, overhead, report, network.name, grid)
