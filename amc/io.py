"""Atomic writes: a reader (or a crash, Ctrl-C or `kill`) never sees half a file. JSON is written strictly."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from amc.errors import UserError


def _atomic(path: Path, write: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text))


def json_text(data: Any, path: str | Path, indent: int = 2) -> str:
    """`data` as strict JSON text for the file `path`: NaN or Infinity anywhere (which Python's json writes and
    other readers reject) is refused with a UserError naming the file, the key and the value."""
    try:
        return json.dumps(data, indent=indent, sort_keys=False, allow_nan=False) + "\n"
    except ValueError:
        found = non_finite(data)
        if found is None:
            raise
        key, value = found
        raise UserError(
            f"refusing to write {path}: {key} is {value!r}, not a finite number (NaN and Infinity are not valid JSON).",
            fix="find what produced it: a diverged fine-tune (lower the learning rate), a LUT or cost model that "
            "prices a layer as NaN or inf (rebuild it with `amc lut build`), or a bad input value.",
        ) from None


def atomic_write_json(path: Path, data: Any) -> None:
    """Write `data` as strict JSON (see `json_text`), atomically."""
    atomic_write_text(path, json_text(data, path))


def non_finite(data: Any, where: str = "") -> tuple[str, float] | None:
    """(dotted path such as `a.b[2]`, value) of the first NaN or infinite float in nested dicts and lists, or None."""
    if isinstance(data, float) and not math.isfinite(data):
        return where or "the value", data
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = [(f"{where}.{key}" if where else str(key), value) for key, value in data.items()]
    elif isinstance(data, (list, tuple)):
        items = [(f"{where}[{index}]", value) for index, value in enumerate(data)]
    else:
        return None
    for key, value in items:
        found = non_finite(value, key)
        if found:
            return found
    return None


def atomic_torch_save(path: Path, data: Any) -> None:
    """torch.save through a temporary file; load it back with `torch.load(path, weights_only=True)`."""
    _atomic(path, lambda tmp: torch.save(data, tmp))
