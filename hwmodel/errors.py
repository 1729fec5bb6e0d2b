"""The one exception hwmodel raises for bad input: what is wrong, and how to fix it.

hwmodel depends on nothing else of ours, so it has its own error type; the `amc` command prints it as one
paragraph and exits 2, exactly like `amc.errors.UserError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HwModelError(Exception):
    """Bad input to a cost model (unknown device or preset, malformed or foreign LUT): never a bug, always a fix."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} Fix: {fix}" if fix else problem)


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """A " Did you mean 'x'?" sentence when `value` is close to one of `choices` (difflib), else an empty string."""
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
