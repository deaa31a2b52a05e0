"""Real public tables shipped inside the repository (see README.md beside this file for sources and licences).

Pure Python: no Django import, so the engine's tests, the benches and the demo can all use it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
ADULT_GZ = HERE / "adult.csv.gz"
# SHA-256 of the decompressed CSV (the UCI file with a header row, spaces after commas removed).
ADULT_SHA256 = "6d8898ef78f064108f1a565b6e09580bb7274d4b94d819e8e19c3ea3ad291209"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def adult_csv() -> Path:
    """The path of a plain CSV copy of Adult, decompressed once into the temporary folder.

    The copy is written under a temporary name and renamed, so concurrent callers (parallel test workers)
    never read a half-written file; an existing copy is used only when its SHA-256 is the expected one.
    """
    target = Path(tempfile.gettempdir()) / "synthex-data" / f"adult-{ADULT_SHA256[:16]}.csv"
    if target.exists() and target.stat().st_size > 0 and _sha256(target) == ADULT_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".adult-", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out, gzip.open(ADULT_GZ, "rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
        if _sha256(Path(partial)) != ADULT_SHA256:
            raise RuntimeError(f"{ADULT_GZ} does not decompress to the expected Adult table.")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def load_adult(**read_csv: Any) -> pd.DataFrame:
    """Adult as a DataFrame (``?`` read as missing unless ``na_values`` says otherwise)."""
    read_csv.setdefault("na_values", ["?"])
    return pd.read_csv(ADULT_GZ, **read_csv)
