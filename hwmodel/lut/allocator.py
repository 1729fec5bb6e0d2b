"""Keep freed memory in the process, so a timed call measures compute and not the kernel handing out pages.

glibc returns large freed blocks (above its mmap threshold, 128 KiB at start) to the operating system, so every
PyTorch eager call that allocates a large activation may page-fault it back in while the kernel zero-fills it.
On a virtual machine a page fault is dear, and whether a call pays it depends on the heap's layout at that
moment, so the same network can time differently from one process to the next. Serving processes keep their
memory warm (ONNX
Runtime has its own arena; PyTorch servers run with jemalloc/tcmalloc or these same settings), so every timing
of this package runs in that steady state: the mmap threshold at glibc's maximum (32 MiB) and no trimming.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
NO_TRIM = 2**31 - 1

_state: str | None = None


def retain_freed_memory() -> str:
    """Set glibc's malloc to keep freed memory (once per process); return the allocator policy now in force.

    "glibc-retain" where it took effect, "system" where the C library is not glibc (nothing changed).
    """
    global _state
    if _state is None:
        _state = "system"
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
            if libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and libc.mallopt(M_TRIM_THRESHOLD, NO_TRIM):
                _state = "glibc-retain"
    return _state
