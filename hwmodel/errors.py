"""The one exception hwmodel raises for bad input: what is wrong, and how to fix it.

hwmodel depends on nothing else of ours, so it has its own error type; the `amc` command prints it as one
paragraph and exits 2, exactly like `amc.errors.UserError`.
"""

from __future__ import annotations


class HwModelError(Exception):
    """Bad input to a cost model (unknown device or preset, malformed or foreign LUT): never a bug, always a fix."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} Fix: {fix}" if fix else problem)
