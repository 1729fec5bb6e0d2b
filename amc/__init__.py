"""amc: hardware-aware automated model compression.

The Python API (`amc.prepare`, `amc.search_strategy`, `amc.apply`, `amc.export`, `amc.load_pruned`) lives in `amc.api`
and is imported on first use, so `import amc` (and the CLI's --help) stays fast.
"""

from __future__ import annotations

from typing import Any

API = ("prepare", "search_strategy", "apply", "export", "load_pruned", "as_schedule", "save_detector", "load_detector")
__all__ = list(API)


def __getattr__(name: str) -> Any:
    if name in API:
        from amc import api

        return getattr(api, name)
    raise AttributeError(f"module 'amc' has no attribute {name!r}")
