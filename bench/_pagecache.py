"""Page-cache hygiene for the I/O benchmarks: every timed step starts from the same cache state.

On the shared benchmark machines, writing a file costs several times more kernel time once a few GB of
written files sit in the page cache (reclaim), so without care a step's figure depends on what earlier
steps left behind: a reference `cp` measured first looks fast and an upload measured after it slow. The
benchmarks therefore flush and evict (``posix_fadvise(DONTNEED)``, no root needed) every file they wrote
before the next timed step. Inputs both sides read (the source file) stay cached for both.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def evict(paths: Iterable[Path]) -> None:
    """Write the files' dirty pages to disk, then drop them from the page cache."""
    os.sync()
    for path in paths:
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError):  # gone meanwhile (SQLite's -wal, a temp file)
            continue
        try:
            os.fdatasync(descriptor)
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def evict_tree(root: Path, *, keep: Iterable[Path] = ()) -> None:
    """``evict`` every file under ``root`` except ``keep``."""
    kept = {path.resolve() for path in keep}
    evict(path for path in root.rglob("*") if path.is_file() and path.resolve() not in kept)


def warm(path: Path) -> None:
    """Read ``path`` once so it is in the page cache for every step that reads it."""
    with path.open("rb") as handle:
        while handle.read(16 << 20):
            pass
