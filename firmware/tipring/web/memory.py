"""Give large transient buffers back to the system, so the process stays small on a Pi.

Each admin password check or change runs scrypt, which allocates 16 MiB (128 * N * r bytes)
for a fraction of a second. glibc serves a block that large with mmap and returns it on free,
but then raises its mmap threshold to that size (the "dynamic threshold"), so the next scrypt
comes from the heap of the executor thread's arena and stays there: 16 MiB more resident for
good after the second sign-in. Fixing the threshold at 1 MiB turns that off: blocks of 1 MiB
or more are always mapped and unmapped, smaller ones behave as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("tipring.web")

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 1024 * 1024


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold; False (and nothing done) on another C library."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1:
        log.warning("malloc mmap threshold not set: large buffers may stay resident")
        return False
    return True
