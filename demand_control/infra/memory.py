"""Hand the memory a step freed back to the operating system before the next step allocates.

A region's plan allocates and frees GBs of short-lived frames (10M history rows at 100k SKU-locations).
glibc's allocator keeps much of what was freed in its heap, so the process's resident size - what a run
worker's memory limit counts - only grows from step to step and the next step's peak lands on top of the
last one's. `malloc_trim` returns the free heap pages; it changes no value. Elsewhere (macOS, musl) a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _trim():  # noqa: ANN202 - the C function, or None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Return the allocator's free pages to the OS (glibc only); milliseconds, so cheap on a scoped replan too."""
    trim = _trim()
    if trim is not None:
        trim(0)
