"""Handing freed memory back to the operating system after a large, transient piece of work."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys


def release_freed_memory() -> None:
    """Collect garbage and ask glibc to return the free parts of its heaps (``malloc_trim``).

    Profiling a large upload allocates and frees a few hundred MB of small Python objects and numpy
    buffers; glibc keeps the freed heap, so a web worker that validated one 1 GB file started the next
    validation 50 MB larger and crept towards the 300 MB budget of issue #2. A no-op off glibc.
    """
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.malloc_trim(ctypes.c_size_t(0))
    except (OSError, AttributeError):
        pass
