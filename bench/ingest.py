"""Ingest benchmark: copy and profile a large adult-like CSV, against `cp` of the same file on the same disk.

Usage: python bench/ingest.py [SIZE_MB] [TEMP_PARENT]    (default 1024 MB, the system temp folder)

Prints, as medians of 3 runs: `cp` wall time, `copy_stream` (SHA-256 while copying, 1 MB chunks) wall time,
their throughput in MB/s and ratio, and `profile_table` wall time and peak RSS of the process that ran it
(a fresh subprocess per run, peak read from its own ``resource.getrusage(RUSAGE_SELF).ru_maxrss``).
The temporary folder is deleted at the end.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from marketplace.datasets import adult_csv

REPO = Path(__file__).resolve().parents[1]
ADULT = adult_csv()
RUNS = 3
CHUNK = 1 << 20

_COPY = """
import sys, time
from marketplace.catalog.ingest import copy_stream
source, target = sys.argv[1], sys.argv[2]
start = time.perf_counter()
with open(source, "rb") as reader, open(target, "wb") as writer:
    digest, size = copy_stream(iter(lambda: reader.read({chunk}), b""), writer, max_bytes=1 << 40)
print(time.perf_counter() - start)
"""

_PROFILE = """
import json, resource, sys, time
from marketplace.catalog.ingest import profile_table
start = time.perf_counter()
profile = profile_table(sys.argv[1], "csv")
elapsed = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": elapsed, "peak_mb": peak_kb / 1024, "rows": profile.rows}}))
"""


def make_csv(path: Path, size_bytes: int) -> None:
    """Write ``size_bytes`` (rounded up to whole rows) of adult.csv's header and rows, repeated."""
    lines = ADULT.read_bytes().splitlines(keepends=True)
    header, body = lines[0], b"".join(lines[1:])
    with path.open("wb") as stream:
        stream.write(header)
        written = len(header)
        while written < size_bytes:
            stream.write(body)
            written += len(body)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def python(code: str, *arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *arguments], cwd=REPO, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    parent = sys.argv[2] if len(sys.argv) > 2 else None
    folder = Path(tempfile.mkdtemp(prefix="synthex-bench-ingest-", dir=parent))
    try:
        source = folder / "big.csv"
        start = time.perf_counter()
        make_csv(source, size_mb << 20)
        size = source.stat().st_size
        print(f"generated {size / 2**20:.0f} MB in {time.perf_counter() - start:.1f} s at {source}")
        target = folder / "copy.csv"
        cp_seconds, copy_seconds, profiles = [], [], []
        for _ in range(RUNS):
            cp_seconds.append(timed(["cp", str(source), str(target)]))
            target.unlink()
            copy_seconds.append(float(python(_COPY.format(chunk=CHUNK), str(source), str(target))))
            target.unlink()
            profiles.append(json.loads(python(_PROFILE.format(), str(source))))
        megabytes = size / 2**20
        cp_median, copy_median = statistics.median(cp_seconds), statistics.median(copy_seconds)
        profile_median = statistics.median(p["seconds"] for p in profiles)
        peak_median = statistics.median(p["peak_mb"] for p in profiles)
        print(f"file: {megabytes:.0f} MB, {profiles[0]['rows']:,} rows; medians of {RUNS}")
        print(
            f"cp:            {cp_median:6.2f} s  {megabytes / cp_median:7.0f} MB/s   runs {_runs(cp_seconds)}"
        )
        print(
            f"copy_stream:   {copy_median:6.2f} s  {megabytes / copy_median:7.0f} MB/s   runs {_runs(copy_seconds)}"
        )
        print(f"copy_stream / cp throughput: {cp_median / copy_median:.2f}")
        print(
            f"profile_table: {profile_median:6.2f} s  {megabytes / profile_median:7.0f} MB/s   "
            f"runs {_runs([p['seconds'] for p in profiles])}"
        )
        print(
            f"profile_table peak RSS: {peak_median:.0f} MB (runs {_runs([p['peak_mb'] for p in profiles], 0)})"
        )
        print(f"profile_table / cp time: {profile_median / cp_median:.1f}")
    finally:
        shutil.rmtree(folder)


def _runs(values: list[float], digits: int = 2) -> str:
    return ", ".join(f"{value:.{digits}f}" for value in values)


if __name__ == "__main__":
    main()
