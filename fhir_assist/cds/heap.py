"""Give freed heap back to the operating system after a large request.

A call carrying tens of MB of prefetch allocates a few hundred thousand small objects; once
they are freed the C allocator keeps most of their pages for later (a 31 MB prefetch left
the worker ~110 MB larger than before the call, though Python held almost nothing of it).
glibc's `malloc_trim` returns those pages. It walks the heap, so it only runs after bodies
over `LARGE_BODY_BYTES`, and it is a no-op where the C library has none (musl, macOS).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

LARGE_BODY_BYTES = 4 * 1024 * 1024


@lru_cache(maxsize=1)
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_heap(body_bytes: int | None) -> bool:
    """After a request of `body_bytes`: trim the heap if the body was large; True if trimmed."""
    if not body_bytes or body_bytes < LARGE_BODY_BYTES:
        return False
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
