"""The one exception users see: a problem with their input, and how to fix it. The CLI prints it and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (file, flag, config value): never a bug, always with a fix."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} Fix: {fix}" if fix else problem)
