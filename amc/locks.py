"""One writer per run folder, checkpoint or LUT: an OS file lock held for the life of the run.

`fcntl.flock` on a `.lock` file, taken without waiting: a second writer is refused at once (a UserError naming
the folder and the holder's PID and command) instead of interleaving its rows with the first's. The lock goes
with the process: it is released on a normal exit, an exception or Ctrl-C, and by the OS when the holder is
killed (kill -9 included), so a resume after a kill is never blocked by a stale lock. The lock file itself stays
(removing it would let a third process lock a fresh file while a second still holds the old one); it is emptied
on release, so its text always names the live holder.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from amc.errors import UserError

LOCK_NAME = ".lock"


def folder_lock_path(folder: Path) -> Path:
    """The lock file of a run folder."""
    return Path(folder) / LOCK_NAME


def file_lock_path(path: Path) -> Path:
    """The lock file of a single file being written (a checkpoint, a LUT): `<file>.lock` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextmanager
def hold_lock(lock_path: Path, what: str) -> Iterator[None]:
    """Hold `lock_path` (created with its parent folders) while the block runs; `what` names the guarded thing
    in the refusal. Re-entrant within one process is not needed and not supported: each writer takes it once."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise UserError(
                f"{what} is in use by another amc process ({holder}); two writers would corrupt it.",
                fix="wait for that run to finish (or stop it), or write to another folder / file.",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\ncommand {' '.join(sys.argv)}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    text = os.pread(fd, 4096, 0).decode(errors="replace")
    fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    if "pid" not in fields:
        return "PID unknown"
    command = f", command: {fields['command']}" if fields.get("command") else ""
    return f"PID {fields['pid']}{command}"


@contextmanager
def lock_folder(folder: Path) -> Iterator[None]:
    """One search at a time writes `folder` (created if missing)."""
    with hold_lock(folder_lock_path(folder), f"run folder {folder}"):
        yield


@contextmanager
def lock_file(path: Path, what: str = "file") -> Iterator[None]:
    """One process at a time writes `path` (a checkpoint, a LUT); the lock is `<path>.lock`."""
    with hold_lock(file_lock_path(path), f"{what} {path}"):
        yield
