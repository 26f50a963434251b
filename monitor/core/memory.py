"""Giving back to the system the memory the daemon has freed.

Every scrape makes a body of tens of megabytes and drops it once sent; the availability
refresh makes and drops its tables once a minute; the kept texts are replaced piece by piece.
glibc's malloc keeps what was freed in its heaps, the HTTP threads' arenas included, for the
next allocation, and returns to the system only what lies at the top of the main heap, so the
resident size stays near the highest it ever was. `malloc_trim(0)` returns every free page
of every arena (glibc 2.8 and later), which the daemon asks for every few seconds in a
thread (measured at 20,000 sites: 323 -> 284 MB resident; a call takes about 0.1 ms).

Elsewhere than glibc (musl, macOS) there is no such call, and nothing is done.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]  # type: ignore[attr-defined]
    trim.restype = ctypes.c_int  # type: ignore[attr-defined]
    return trim


_TRIM = _malloc_trim()


def release_freed_memory() -> bool:
    """Return freed memory to the system; True if some was returned (False, too, where the
    C library cannot)."""
    return _TRIM is not None and _TRIM(0) == 1
