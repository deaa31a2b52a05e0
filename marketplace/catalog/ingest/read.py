"""Reading a validated table into pandas, whole or its first rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketplace.catalog.ingest.sniff import TABLE_FORMATS


def read_table(
    path: str | Path,
    fmt: str,
    *,
    columns: list[str] | None = None,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """The table in ``path`` (already accepted by ``profile_table``) as a DataFrame.

    Only ``columns`` (default all, in file order) and at most ``max_rows`` rows (default all) are read;
    Parquet and JSON Lines stop reading once ``max_rows`` rows are in. Types are pandas' own inference for
    CSV and JSON Lines and the stored types for Parquet.
    """
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"unknown table format {fmt!r}")
    path = Path(path)
    if fmt == "csv":
        frame = pd.read_csv(path, usecols=columns, nrows=max_rows, encoding="utf-8-sig")
    elif fmt == "parquet":
        frame = _read_parquet(path, columns, max_rows)
    else:
        frame = _read_jsonl(path, columns, max_rows)
    return frame if columns is None else frame[columns]


def _read_parquet(path: Path, columns: list[str] | None, max_rows: int | None) -> pd.DataFrame:
    parquet = pq.ParquetFile(path)
    try:
        if max_rows is None:
            return parquet.read(columns=columns).to_pandas()
        batches = []
        remaining = max_rows
        for batch in parquet.iter_batches(batch_size=min(max(remaining, 1), 65_536), columns=columns):
            batches.append(batch.slice(0, remaining))
            remaining -= min(remaining, batch.num_rows)
            if remaining == 0:
                break
        schema = (
            parquet.schema_arrow
            if columns is None
            else pa.schema([parquet.schema_arrow.field(c) for c in columns])
        )
        return pa.Table.from_batches(batches, schema=schema).to_pandas()
    finally:
        parquet.close()


def _read_jsonl(path: Path, columns: list[str] | None, max_rows: int | None) -> pd.DataFrame:
    records: list[dict[str, object]] = []
    with path.open("r", encoding="utf-8-sig") as stream:
        for line in stream:
            if max_rows is not None and len(records) >= max_rows:
                break
            if line.strip():
                records.append(json.loads(line))
    return pd.DataFrame.from_records(records)
