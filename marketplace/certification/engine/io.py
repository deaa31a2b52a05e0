"""Reading tables from CSV, Parquet or JSON Lines files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import EngineError

_PARQUET_MAGIC = b"PAR1"


def _sniff(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    return "csv"


def load_table(path: str | Path) -> pd.DataFrame:
    """Read one table; the format comes from the extension (.csv, .parquet/.pq, .jsonl/.ndjson/.json)
    or, for any other name, from the content (Parquet magic bytes, a leading ``{``, else CSV).

    Raises EngineError when the file is missing, unreadable or holds no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"The file {path.name} does not exist.")
    suffix = path.suffix.lower()
    kind = {
        ".csv": "csv",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
    }.get(suffix)
    if suffix == ".json":
        kind = "jsonl"
    if kind is None:
        kind = _sniff(path)
    try:
        if kind == "parquet":
            table = pd.read_parquet(path)
        elif kind == "jsonl":
            table = pd.read_json(path, lines=True)
        else:
            table = pd.read_csv(path)
    except Exception as error:
        raise EngineError(f"The file {path.name} could not be read as {kind.upper()}: {error}") from error
    if table.empty or len(table.columns) == 0:
        raise EngineError(f"The file {path.name} holds no rows.")
    return table
