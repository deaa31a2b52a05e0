"""Streaming a large download to disk: reserve the file's blocks first (Linux ``fallocate`` with
``FALLOC_FL_KEEP_SIZE``), then write aligned blocks around the page cache (``O_DIRECT``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import sys

_KEEP_SIZE = 1


def preallocate(descriptor: int, offset: int, length: int) -> bool:
    """Reserve ``length`` bytes of disk from ``offset`` without changing the file's size; True if done.

    Streaming a large download into a file whose blocks ext4 must allocate as it goes (delayed allocation)
    made the 1 GB writes of ``synthex download`` two to three times slower on the benchmark machine, and
    the slowdown varied run to run (0.6-1.0 s with the blocks reserved, 1.0-2.5 s without). Reserved blocks
    are filled in place; the size stays what was written, so it still tells a resumed download how much
    arrived. Best effort: on other systems or file systems nothing happens and writes go as before.
    """
    if length <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        result = libc.fallocate(
            ctypes.c_int(descriptor),
            ctypes.c_int(_KEEP_SIZE),
            ctypes.c_longlong(offset),
            ctypes.c_longlong(length),
        )
    except (OSError, AttributeError):
        return False
    return result == 0


class BlockWriter:
    """Writes blocks at given offsets of a file, around the page cache where it can (``O_DIRECT``).

    A buffered write copies each byte into the page cache (0.15-0.3 s of CPU per GB on the benchmark
    machine, taken from the cores that receive and hash the download) and leaves it all to be flushed
    later; the first 1 GB written after the cache had been emptied often took 2-3 s. A direct write hands
    the buffer to the device instead. It needs the buffer's memory (see :func:`aligned_buffer`), the offset
    and the length aligned; other blocks (the file's tail, a resume from an odd offset) and file systems or
    systems without ``O_DIRECT`` (tmpfs, macOS) use the buffered descriptor, which the kernel keeps coherent.
    """

    ALIGN = 4096

    def __init__(self, path: str) -> None:
        # Its own descriptors, without O_APPEND (under which Linux's pwrite ignores the offset).
        self._buffered = os.open(path, os.O_WRONLY)
        self._direct: int | None = None
        flag = getattr(os, "O_DIRECT", 0)
        if flag:
            try:
                self._direct = os.open(path, os.O_WRONLY | flag)
            except OSError:
                self._direct = None

    @property
    def direct(self) -> bool:
        return self._direct is not None

    def write(self, view: memoryview, offset: int) -> None:
        if self._direct is not None and not (offset | len(view)) % self.ALIGN:
            try:
                _write_at(self._direct, view, offset)
                return
            except OSError as error:  # an alignment this device refuses: buffered from here on
                if error.errno != errno.EINVAL:
                    raise
                self._close_direct()
        _write_at(self._buffered, view, offset)

    def close(self) -> None:
        self._close_direct()
        if self._buffered >= 0:
            os.close(self._buffered)
            self._buffered = -1

    def _close_direct(self) -> None:
        if self._direct is not None:
            os.close(self._direct)
            self._direct = None


def aligned_buffer(size: int) -> memoryview:
    """A writable page-aligned buffer of ``size`` bytes (an anonymous map), as direct writes require."""
    return memoryview(mmap.mmap(-1, size))


def _write_at(descriptor: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(descriptor, view, offset)
        view, offset = view[written:], offset + written
