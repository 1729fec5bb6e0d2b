#!/usr/bin/env python3
"""amc_lut_runner.py: time an amc unit bundle on this device, for a latency table amc cannot measure itself.

`amc lut export-units` writes a bundle: one small ONNX model per layer unit a pruning search can visit, whole
thinned networks to calibrate and validate the table with, and this script. Copy the bundle folder to the
target device and run

    python amc_lut_runner.py [BUNDLE] [--threads N] [--repeats N]

with nothing but Python 3, numpy and onnxruntime (or openvino) installed there: no torch, no onnx package, no
amc. It writes BUNDLE/results.json; bring that file back and run `amc lut import BUNDLE/results.json --out
lut.json` to turn it into a LUT.

Timing is the one amc uses for its own LUTs: warm-up calls, then timed repeats with the garbage collector
paused; the repeats split into round-robin passes over a batch of units, keeping each unit's calmest pass
(median, interquartile range, minimum); ONNX Runtime with the same session options as amc, and each unit
without the blocked-layout (NCHWc) conversions at its borders, which a layer inside a network does not pay.

The weights of the units and networks are not in the bundle (their values do not matter for a timing, only their
shapes): each model file refers to its weights as ONNX external data in a .bin file next to it, which this runner
writes from seeded random numbers of the distribution the manifest names just before loading the model, and
deletes once the model is timed (so a small board needs the disk space of one batch of weights at a time).

Resumable: progress is saved (atomically) every --save-every seconds and after every batch; a runner stopped
by Ctrl-C, kill -9 or a reboot continues where it stopped when started again with the same settings. Exit 2
means bad input (a missing or altered bundle file, an unknown or missing runtime, a resume with other settings).

This file is standalone on purpose (it imports only the standard library, numpy and the runtime); its source
lives in amc as hwmodel/lut/runner_script.py.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import hashlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANIFEST_SCHEMA = "amc-unit-bundle"
MANIFEST_SCHEMA_VERSION = 2
"""2: the models' weights are external data this runner writes next to them (`materialize`) before loading."""
RESULTS_SCHEMA = "amc-unit-bundle-results"
RESULTS_SCHEMA_VERSION = 1
RUNTIMES = ("onnxruntime", "openvino")
ORT_PROVIDER = "CPUExecutionProvider"
ORT_OPTIMIZATION = "ORT_ENABLE_ALL"
OPENVINO_DEVICE = "CPU"
OPENVINO_PRECISION = "f32"
NCHWC_DOMAIN = "com.microsoft.nchwc"
POOL_BYTES = 1 << 30
"""Whole networks are timed in one interleaved pool up to this many bytes of model files (as amc does)."""


class BadInput(Exception):
    """A problem with the bundle, the flags or this device's setup: printed as one paragraph, exit 2."""


# ---------------------------------------------------------------- timing (as hwmodel/lut/timing.py)


class Measurement:
    """Median, interquartile range and minimum (ms) of `repeats` timed calls."""

    def __init__(self, median_ms: float, iqr_ms: float, min_ms: float, repeats: int) -> None:
        self.median_ms, self.iqr_ms, self.min_ms, self.repeats = median_ms, iqr_ms, min_ms, repeats

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "min_ms": self.min_ms, "repeats": self.repeats}


Timer = Callable[[int], Measurement]
_allocator: str | None = None


def retain_freed_memory() -> str:
    """glibc keeps freed memory in the process (mmap threshold at its maximum, no trimming), as amc sets it."""
    global _allocator
    if _allocator is None:
        _allocator = "system"
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
            if libc.mallopt(-3, 32 * 1024 * 1024) and libc.mallopt(-1, 2**31 - 1):
                _allocator = "glibc-retain"
    return _allocator


def time_callable(run: Callable[[], object], warmup: int, repeats: int) -> Measurement:
    """`warmup` untimed calls, then `repeats` timed ones with the garbage collector paused."""
    retain_freed_memory()
    for _ in range(warmup):
        run()
    samples = []
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter_ns()
            run()
            samples.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        if collecting:
            gc.enable()
    iqr = 0.0
    if repeats >= 2:
        quartiles = statistics.quantiles(samples, n=4)
        iqr = quartiles[2] - quartiles[0]
    return Measurement(statistics.median(samples), iqr, min(samples), repeats)


def interleaved(timers: list[Timer], repeats: int, rounds: int) -> list[Measurement]:
    """`rounds` round-robin passes of repeats/rounds calls each; per unit the calmest pass's median."""
    per_round = max(1, math.ceil(repeats / rounds))
    results: list[list[Measurement]] = [[] for _ in timers]
    for _ in range(rounds):
        for timer, found in zip(timers, results):
            found.append(timer(per_round))
    return [
        Measurement(
            min(m.median_ms for m in found),
            statistics.median(m.iqr_ms for m in found),
            min(m.min_ms for m in found),
            sum(m.repeats for m in found),
        )
        for found in results
    ]


def in_chain(measurement: Measurement, correction_ms: float) -> Measurement:
    """Less the border conversions, never below 1% of what was measured (as hwmodel/lut/nchwc.py)."""
    return Measurement(
        max(measurement.median_ms - correction_ms, 0.01 * measurement.median_ms),
        measurement.iqr_ms,
        max(measurement.min_ms - correction_ms, 0.01 * measurement.min_ms),
        measurement.repeats,
    )


def chained(timer: Timer, correction_ms: float) -> Timer:
    """The unit as it runs inside a chain: each pass's measurement less its border conversions."""
    return lambda repeats: in_chain(timer(repeats), correction_ms)


def random_input(shape: list[int]) -> Any:
    import numpy as np

    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


WEIGHTS_SEED = 0


def weights_path(bundle: Path, entry: dict) -> Path | None:
    """Where the weights of a unit or network go (next to its model file), or None if it has none outside it."""
    weights = entry.get("weights")
    if not weights:
        return None
    name = Path(weights["file"])
    if name.is_absolute() or ".." in name.parts or name.parent != Path(entry["file"]).parent:
        raise BadInput(f"the manifest names weights file {weights['file']!r} outside its model's folder: export again.")
    return bundle / name


def materialize(bundle: Path, entry: dict) -> Path | None:
    """Write the external weights of a unit or network: seeded random float32 values of each tensor's
    distribution at its offset (the same values every time). The path written, or None."""
    import numpy as np

    path = weights_path(bundle, entry)
    if path is None:
        return None
    rng = np.random.default_rng(WEIGHTS_SEED)
    try:
        with path.open("wb") as stream:
            for tensor in entry["weights"]["tensors"]:
                count = tensor["length"] // 4
                if tensor["dist"] == "uniform":
                    values = rng.uniform(tensor["low"], tensor["high"], count)
                elif tensor["dist"] == "normal":
                    values = rng.normal(tensor["mean"], tensor["std"], count)
                else:
                    raise BadInput(
                        f"the manifest names an unknown weight distribution {tensor['dist']!r}: export again."
                    )
                stream.seek(tensor["offset"])
                stream.write(values.astype("<f4").tobytes())
            stream.truncate(entry["weights"]["bytes"])
    except OSError as error:
        raise BadInput(
            f"cannot write the weights file {path} ({error}): the runner writes each model's weights next to it "
            "before timing it, so the bundle folder must be writable and have room for one batch of them."
        ) from None
    return path


def discard(paths: list[Path | None]) -> None:
    """Delete materialised weights once their models are timed (they are written again on a resume)."""
    for path in paths:
        if path is not None:
            with contextlib.suppress(OSError):  # e.g. still mapped on Windows; written again on a resume
                path.unlink()


# ---------------------------------------------------------------- ONNX files without the onnx package


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _fields(data: memoryview) -> Any:
    """(field number, wire type, value) of one protobuf message, read from its wire format."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            yield number, wire, value
        elif wire == 2:
            length, at = _varint(data, at)
            yield number, wire, data[at : at + length]
            at += length
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def node_ops(model: bytes) -> set[tuple[str, str]]:
    """(domain, op_type) of every node of an ONNX model's main graph (ModelProto.graph = 7, GraphProto.node = 1,
    NodeProto.op_type = 4, NodeProto.domain = 7)."""
    ops = set()
    for number, wire, graph in _fields(memoryview(model)):
        if number != 7 or wire != 2:
            continue
        for field, kind, node in _fields(graph):
            if field != 1 or kind != 2:
                continue
            text = {n: bytes(v).decode() for n, k, v in _fields(node) if k == 2 and n in (4, 7)}
            ops.add((text.get(7, ""), text.get(4, "")))
    return ops


# ---------------------------------------------------------------- runtimes


class OrtRuntime:
    """ONNX Runtime CPU, the session options of amc's OrtBackend."""

    name = "onnxruntime"

    def __init__(self, threads: int, warmup: int) -> None:
        import onnxruntime

        self.ort, self.threads, self.warmup = onnxruntime, threads, warmup
        self.version = onnxruntime.__version__

    def fingerprint(self) -> dict[str, str]:
        return {"onnxruntime": self.version, "provider": ORT_PROVIDER, "graph_optimization": ORT_OPTIMIZATION}

    def session(self, model: Path, optimized: Path | None = None) -> Any:
        """A session of the model file (from its path, so that its external weights are read from its folder)."""
        ort = self.ort
        options = ort.SessionOptions()
        if optimized is not None:
            options.optimized_model_filepath = str(optimized)
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        return ort.InferenceSession(str(model), options, providers=[ORT_PROVIDER])

    def bound(self, session: Any, example: Any) -> Timer:
        """`run_with_iobinding` with the input bound once."""
        binding = session.io_binding()
        binding.bind_cpu_input(session.get_inputs()[0].name, example)
        for output in session.get_outputs():
            binding.bind_output(output.name)
        return lambda repeats: time_callable(lambda: session.run_with_iobinding(binding), self.warmup, repeats)

    def timer(self, model: Path, shape: list[int]) -> Timer:
        return self.bound(self.session(model), random_input(shape))

    def unit_timer(self, model: Path, shape: list[int]) -> tuple[Timer, list[str], float]:
        """The unit's timer, which borders ("input", "output") its optimised graph converts to NCHWc (half a
        round trip of each is subtracted) and no correction of its own."""
        with tempfile.TemporaryDirectory() as folder:
            optimized = Path(folder) / "unit.onnx"
            session = self.session(model, optimized)
            ops = {op for domain, op in node_ops(optimized.read_bytes()) if domain == NCHWC_DOMAIN}
        borders = [border for border, op in (("input", "ReorderInput"), ("output", "ReorderOutput")) if op in ops]
        return self.bound(session, random_input(shape)), borders, 0.0


class OpenVinoRuntime:
    """OpenVINO CPU plugin, the compile settings of amc's OpenVinoBackend."""

    name = "openvino"

    def __init__(self, threads: int, warmup: int) -> None:
        import openvino

        self.ov, self.threads, self.warmup = openvino, threads, warmup
        self.version = openvino.__version__
        self.core = openvino.Core()

    def fingerprint(self) -> dict[str, str]:
        return {"openvino": self.version, "provider": OPENVINO_DEVICE, "precision": OPENVINO_PRECISION}

    def request(self, model: Path, shape: list[int], profiled: bool = False) -> Any:
        read = self.core.read_model(str(model))  # external weights are read from the model's folder
        settings = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": "1",
            "INFERENCE_NUM_THREADS": str(self.threads),
            "INFERENCE_PRECISION_HINT": OPENVINO_PRECISION,
        }
        if profiled:
            settings["PERF_COUNT"] = "YES"
        request = self.core.compile_model(read, OPENVINO_DEVICE, settings).create_infer_request()
        request.set_input_tensor(self.ov.Tensor(random_input(shape)))
        return request

    def timer(self, model: Path, shape: list[int]) -> Timer:
        request = self.request(model, shape)
        return lambda repeats: time_callable(request.infer, self.warmup, repeats)

    def unit_timer(self, model: Path, shape: list[int]) -> tuple[Timer, list[str], float]:
        """The unit's timer, no NCHWc borders, and its layout Reorders' per-call ms from the profiling counters
        to subtract (as amc's OpenVinoBackend.layer_timer and hwmodel.lut.backends.openvino_reorders_ms)."""
        request = self.request(model, shape, profiled=True)
        warmup, calls = max(self.warmup, 10), 30

        def reorder_total_ms(done: int) -> float:
            profile = request.get_profiling_info()
            return 1e3 * done * sum(node.real_time.total_seconds() for node in profile if node.node_type == "Reorder")

        for _ in range(warmup):
            request.infer()
        before = reorder_total_ms(warmup)
        for _ in range(calls):
            request.infer()
        correction = max(0.0, (reorder_total_ms(warmup + calls) - before) / calls)
        return lambda repeats: time_callable(request.infer, self.warmup, repeats), [], correction


def open_runtime(name: str, threads: int, warmup: int) -> Any:
    if name not in RUNTIMES:
        raise BadInput(f"unknown runtime {name!r}: this runner times with {' or '.join(RUNTIMES)}.")
    package = {"onnxruntime": "onnxruntime", "openvino": "openvino"}[name]
    try:
        import numpy  # noqa: F401

        return OrtRuntime(threads, warmup) if name == "onnxruntime" else OpenVinoRuntime(threads, warmup)
    except ImportError as error:
        raise BadInput(
            f"runtime {name} cannot be used here: {error}. Install what it needs on this device "
            f"(`python -m pip install numpy {package}`), or pass --runtime with one that is installed."
        ) from None


# ---------------------------------------------------------------- device fingerprint


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Hardware", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_fingerprint(runtime: Any, threads: int, timing: str) -> dict[str, str]:
    """The fields amc's device_fingerprint records for this runtime, plus the Python and numpy versions."""
    import numpy

    return {
        "backend": runtime.name,
        "cpu_model": cpu_model(),
        "logical_cores": str(os.cpu_count() or 0),
        "machine": platform.machine(),
        "threads": str(threads),
        "timing": timing,
        **runtime.fingerprint(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "runner": "amc-unit-bundle",
    }


# ---------------------------------------------------------------- bundle and results files


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(bundle: Path) -> tuple[dict[str, Any], str]:
    """The manifest and its sha256, after every file it lists was checked against its hash."""
    path = bundle / "manifest.json"
    if not path.is_file():
        raise BadInput(
            f"{bundle} is not an amc unit bundle: it has no manifest.json. Pass the folder that "
            "`amc lut export-units --out` wrote (copied whole), or run the script from inside it."
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BadInput(f"{path} is not readable JSON ({error}): copy the bundle again.") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise BadInput(f"{path} is not an amc unit bundle manifest: copy the bundle again.")
    version = manifest.get("schema_version")
    if version != MANIFEST_SCHEMA_VERSION:
        raise BadInput(
            f"{path} has schema_version {version!r}; this runner reads only {MANIFEST_SCHEMA_VERSION} (bundles of "
            "another amc version store their weights differently). Use the amc_lut_runner.py that came in the "
            "same bundle, or export the bundle again with this amc."
        )
    bad = []
    for name, digest in sorted(manifest["files"].items()):
        file = bundle / name
        if not file.is_file():
            bad.append(f"{name} is missing")
        elif sha256_of(file) != digest:
            bad.append(f"{name} has changed")
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise BadInput(
            f"bundle {bundle} is incomplete or altered ({len(bad)} of {len(manifest['files'])} files): {shown}. "
            "Copy the whole folder again (e.g. as one tar or zip archive), or export it again with `amc lut "
            "export-units`."
        )
    return manifest, sha256_of(path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a reader (or a resumed runner) sees the old file or the new one, never half of one."""
    text = json.dumps(data, indent=1, allow_nan=False)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


SETTINGS = ("runtime", "threads", "warmup", "repeats", "rounds")


def _differences(stored: dict, wanted: dict, label: str) -> list[str]:
    """'key stored (label wanted)' for every key of `wanted` whose value in `stored` differs."""
    return [
        f"{key} {stored.get(key)!r} ({label} {value!r})" for key, value in wanted.items() if stored.get(key) != value
    ]


def start_results(path: Path, manifest_sha: str, settings: dict[str, Any], fingerprint: dict[str, str]) -> dict:
    """The results so far at `path` (same bundle, settings and device), or a fresh record."""
    fresh = {
        "schema": RESULTS_SCHEMA,
        "schema_version": RESULTS_SCHEMA_VERSION,
        "manifest_sha256": manifest_sha,
        "settings": settings,
        "fingerprint": fingerprint,
        "complete": False,
        "round_trips": {},
        "units": {},
        "networks": {},
        "elapsed_s": 0.0,
    }
    if not path.exists():
        return fresh
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BadInput(f"{path} exists but is not readable JSON ({error}): move it away to start afresh.") from None
    if not isinstance(found, dict) or found.get("schema") != RESULTS_SCHEMA:
        raise BadInput(f"{path} exists and is not a results file of this runner: move it away or pass --out.")
    if found.get("manifest_sha256") != manifest_sha:
        raise BadInput(
            f"{path} holds results of another bundle (its manifest hash differs): move it away to start afresh "
            "here, or pass --out with another file."
        )
    differing = _differences(found["settings"], settings, "asked")
    if differing:
        raise BadInput(
            f"{path} was started with other settings: {', '.join(differing)}. Resume it with the settings it was "
            "started with (the same flags), or move it away (or pass --out) to start a run with the new ones."
        )
    moved = _differences(found["fingerprint"], fingerprint, "here")
    if moved:
        raise BadInput(
            f"{path} was started on another device or setup: {', '.join(moved)}. Finish it there, or move it "
            "away (or pass --out) to time this device from scratch."
        )
    return found


class Progress:
    """Saves the results every `every_s` seconds (and when asked) and prints one progress line per save."""

    def __init__(self, path: Path, results: dict, total: int, every_s: float, quiet: bool) -> None:
        self.path, self.results, self.total, self.every_s, self.quiet = path, results, total, every_s, quiet
        self.started = time.monotonic()
        self.elapsed_before = float(results.get("elapsed_s", 0.0))
        self.saved_at = self.started
        self.first_done = self.done()

    def done(self) -> int:
        return len(self.results["units"]) + len(self.results["networks"])

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.saved_at < self.every_s:
            return
        self.results["elapsed_s"] = self.elapsed_before + now - self.started
        write_json(self.path, self.results)
        self.saved_at = now
        if not self.quiet:
            done = self.done()
            rate = (now - self.started) / max(done - self.first_done, 1)
            left = (self.total - done) * rate if done > self.first_done else float("nan")
            eta = f", about {left / 60:.1f} min left" if math.isfinite(left) else ""
            print(
                f"[amc_lut_runner] {done}/{self.total} units and networks timed "
                f"({self.results['elapsed_s']:.0f} s{eta}); saved {self.path}",
                file=sys.stderr,
                flush=True,
            )


# ---------------------------------------------------------------- the run


def round_trip_ms(runtime: Any, bundle: Path, entry: dict, results: dict, progress: Progress, repeats: int) -> float:
    """Median ms of one activation converted to NCHWc and back (timed once per shape, kept in the results)."""
    file = entry["file"]
    if file not in results["round_trips"]:
        timer = runtime.timer(bundle / file, entry["shape"])
        results["round_trips"][file] = timer(repeats).median_ms
        progress.save()
    return float(results["round_trips"][file])


def time_units(runtime: Any, bundle: Path, manifest: dict, args: argparse.Namespace, progress: Progress) -> None:
    """Every unit not yet in the results, `--batch` at a time interleaved, saved after each batch."""
    results = progress.results
    round_trips = manifest.get("round_trips", {})
    todo = [unit for unit in manifest["units"] if unit["id"] not in results["units"]]
    for start in range(0, len(todo), args.batch):
        batch = todo[start : start + args.batch]
        timers: list[Timer] = []
        notes = []
        written = [materialize(bundle, unit) for unit in batch]
        for unit in batch:
            timer, borders, correction = runtime.unit_timer(bundle / unit["file"], unit["input_shape"])
            shapes = [unit["round_trips"][border] for border in borders]
            correction += (
                sum(
                    round_trip_ms(runtime, bundle, round_trips[name], results, progress, args.repeats)
                    for name in shapes
                )
                / 2
            )
            timers.append(chained(timer, correction))
            notes.append({"reorders": borders, "correction_ms": correction})
        for unit, measurement, note in zip(batch, interleaved(timers, args.repeats, args.rounds), notes):
            results["units"][unit["id"]] = {**measurement.to_dict(), **note}
        timers.clear()
        discard(written)
        progress.save(force=True)


def network_pools(networks: list[dict], bundle: Path) -> list[list[dict]]:
    pools: list[list[dict]] = [[]]
    held = 0
    for network in networks:
        size = (bundle / network["file"]).stat().st_size + (network.get("weights") or {}).get("bytes", 0)
        if pools[-1] and held + size > POOL_BYTES:
            pools.append([])
            held = 0
        pools[-1].append(network)
        held += size
    return [pool for pool in pools if pool]


def time_networks(runtime: Any, bundle: Path, manifest: dict, args: argparse.Namespace, progress: Progress) -> None:
    """Every network not yet in the results, timed side by side in interleaved pools, saved after each pool."""
    results = progress.results
    todo = [network for network in manifest["networks"] if network["name"] not in results["networks"]]
    for pool in network_pools(todo, bundle):
        written = [materialize(bundle, n) for n in pool]
        timers = [runtime.timer(bundle / n["file"], n["input_shape"]) for n in pool]
        for network, measurement in zip(pool, interleaved(timers, args.repeats, args.rounds)):
            results["networks"][network["name"]] = measurement.to_dict()
        timers.clear()
        discard(written)
        progress.save(force=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="amc_lut_runner.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "bundle", nargs="?", default=None, help="the bundle folder (default: the folder this script is in)"
    )
    parser.add_argument("--out", help="results file (default: BUNDLE/results.json); an existing one is resumed")
    parser.add_argument("--runtime", help=f"{' or '.join(RUNTIMES)} (default: the bundle's)")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: the bundle's, as exported)")
    parser.add_argument("--warmup", type=int, help="untimed calls before timing a unit (default: the bundle's)")
    parser.add_argument("--repeats", type=int, help="timed calls per unit and network (default: the bundle's)")
    parser.add_argument("--rounds", type=int, help="round-robin passes the repeats are split into (default: bundle's)")
    parser.add_argument("--batch", type=int, default=32, help="units prepared and interleaved at once (32)")
    parser.add_argument("--save-every", type=float, default=30.0, metavar="SECONDS", help="save progress this often")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser.parse_args(argv)


def settings_of(args: argparse.Namespace, manifest: dict) -> dict[str, Any]:
    chosen = {key: getattr(args, key) for key in SETTINGS}
    settings = {key: manifest["settings"][key] if value is None else value for key, value in chosen.items()}
    for key in ("threads", "repeats", "rounds"):
        if not isinstance(settings[key], int) or settings[key] < 1:
            raise BadInput(f"--{key} is {settings[key]!r}; it must be a whole number >= 1.")
    if not isinstance(settings["warmup"], int) or settings["warmup"] < 0:
        raise BadInput(f"--warmup is {settings['warmup']!r}; it must be a whole number >= 0.")
    if args.batch < 1:
        raise BadInput(f"--batch is {args.batch!r}; it must be a whole number >= 1.")
    if settings["runtime"] not in RUNTIMES:
        raise BadInput(f"unknown runtime {settings['runtime']!r}: pass --runtime {' or --runtime '.join(RUNTIMES)}.")
    return settings


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bundle = Path(args.bundle) if args.bundle else Path(__file__).resolve().parent
    if not bundle.is_dir():
        raise BadInput(f"bundle folder {bundle} does not exist: pass the folder `amc lut export-units` wrote.")
    manifest, manifest_sha = load_manifest(bundle)
    settings = settings_of(args, manifest)
    for key in ("threads", "warmup", "repeats", "rounds"):
        setattr(args, key, settings[key])
    runtime = open_runtime(settings["runtime"], settings["threads"], settings["warmup"])
    out = Path(args.out) if args.out else bundle / "results.json"
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: folder {out.parent} does not exist.")
    fingerprint = device_fingerprint(runtime, settings["threads"], manifest["timing_method"])
    results = start_results(out, manifest_sha, settings, fingerprint)
    total = len(manifest["units"]) + len(manifest["networks"])
    progress = Progress(out, results, total, args.save_every, args.quiet)
    if not args.quiet:
        resumed = f", resuming with {progress.first_done} done" if progress.first_done else ""
        print(
            f"[amc_lut_runner] {manifest['model']} {'x'.join(map(str, manifest['input_size']))}: "
            f"{len(manifest['units'])} units and {len(manifest['networks'])} networks on {runtime.name} "
            f"{runtime.version}, {settings['threads']} thread(s), {settings['repeats']} repeats{resumed}",
            file=sys.stderr,
            flush=True,
        )
    try:
        time_units(runtime, bundle, manifest, args, progress)
        time_networks(runtime, bundle, manifest, args, progress)
    except KeyboardInterrupt:
        progress.save(force=True)
        print("[amc_lut_runner] interrupted; run it again to continue where it stopped.", file=sys.stderr)
        return 130
    results["complete"] = True
    progress.save(force=True)
    if not args.quiet:
        print(f"[amc_lut_runner] done: bring back {out} and run `amc lut import {out} --out lut.json`.")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except BadInput as error:
        print(f"amc_lut_runner.py: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
