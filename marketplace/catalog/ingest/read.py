"""Reading a validated table into pandas: whole, its first rows, or a bounded uniform sample."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
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


_ARROW_TYPES = {"integer": pa.float64(), "float": pa.float64(), "boolean": pa.bool_(), "string": pa.string()}


def sample_table(
    path: str | Path,
    fmt: str,
    *,
    max_rows: int,
    seed: int,
    dtypes: dict[str, str] | None = None,
    batch_rows: int = 65_536,
) -> tuple[pd.DataFrame, int]:
    """A uniform random sample of at most ``max_rows`` rows, and the table's total row count.

    Reads in batches and keeps the rows with the ``max_rows`` smallest random keys seen so far, so memory
    is bounded by ``max_rows`` plus one batch whatever the file's size, and every row has the same chance
    of being kept. ``dtypes`` (column → profile dtype) fixes CSV column types for the whole file instead
    of letting the first block decide. Deterministic for the same file and ``seed``.
    """
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"unknown table format {fmt!r}")
    rng = np.random.default_rng(seed)
    kept: pa.Table | None = None
    keys = np.empty(0)
    total = 0
    for batch in _batches(Path(path), fmt, dtypes or {}, batch_rows):
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        total += table.num_rows
        batch_keys = rng.random(table.num_rows)
        combined = table if kept is None else pa.concat_tables([kept, table], promote_options="permissive")
        keys = np.concatenate([keys, batch_keys])
        if combined.num_rows > max_rows:
            chosen = np.sort(np.argpartition(keys, max_rows - 1)[:max_rows])
            combined = combined.take(pa.array(chosen))
            keys = keys[chosen]
        kept = combined
    if kept is None:
        return pd.DataFrame(), 0
    return kept.to_pandas(), total


def _batches(
    path: Path, fmt: str, dtypes: dict[str, str], batch_rows: int
) -> Iterator[pa.RecordBatch | pa.Table]:
    if fmt == "csv":
        from pyarrow import csv

        column_types = {name: _ARROW_TYPES[kind] for name, kind in dtypes.items() if kind in _ARROW_TYPES}
        reader = csv.open_csv(
            path,
            read_options=csv.ReadOptions(block_size=1 << 20, encoding="utf-8"),
            convert_options=csv.ConvertOptions(column_types=column_types),
        )
        yield from reader
    elif fmt == "parquet":
        parquet = pq.ParquetFile(path)
        try:
            yield from parquet.iter_batches(batch_size=batch_rows)
        finally:
            parquet.close()
    else:
        for chunk in pd.read_json(path, lines=True, chunksize=batch_rows, encoding="utf-8-sig"):
            yield pa.Table.from_pandas(chunk, preserve_index=False)
