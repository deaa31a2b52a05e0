"""Streaming table conversion between CSV, Parquet and JSON Lines, marking each batch on the way.

Pure (pyarrow, pandas, numpy; no Django). Memory stays bounded by a few batches whatever the file size: the
source is read batch by batch (twice: plan, then mark-and-write) and written batch by batch.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from exchange.downloads.constants import CONTENT_TYPES, FORMATS
from exchange.downloads.fingerprint import FingerprintPlan, Marker, plan_table
from marketplace.catalog.ingest.sources import TableSource

__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "Converted",
    "convert",
    "neutralise_formulas",
    "plan_file",
    "read_any",
    "read_batches",
]
MAX_LINE_BYTES = 1 << 20
_READ_CHUNK = 1 << 20
# OWASP "CSV injection": a spreadsheet runs a cell starting with one of these as a formula (or DDE command).
FORMULA_START = r"^[=+\-@\t\r]"
# A text cell that is a plain number literal ("-12", "+3.5e2") cannot run anything: it is left as it is.
_NUMBER_LITERAL = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


@dataclass(frozen=True)
class Converted:
    """A written copy: its SHA-256 and BLAKE3 (hex), size in bytes and row count, and the source rows the
    fingerprint left out of it (values are never changed)."""

    sha256: str
    blake3: str
    size_bytes: int
    rows: int
    omitted_rows: int


def _typed(array: pa.Array, dtype: str | None) -> pa.Array:
    """Text columns from CSV / JSON Lines, cast to the type the upload's profile found (strings otherwise)."""
    if dtype == "integer":
        return pc.cast(pc.utf8_trim_whitespace(array), pa.int64())
    if dtype == "float":
        return pc.cast(pc.utf8_trim_whitespace(array), pa.float64())
    return array


def read_batches(path: Path, fmt: str, dtypes: Mapping[str, str] | None = None) -> Iterator[pa.RecordBatch]:
    """Yield the table in ``path`` as record batches. Parquet keeps its stored types; CSV and JSON Lines
    columns are strings, cast to int64 / float64 where ``dtypes`` (column name → profile dtype) says so."""
    source = TableSource(path, fmt, max_line_bytes=MAX_LINE_BYTES)
    names = list(source.names)
    for arrays in source.batches():
        if fmt != "parquet":
            arrays = [
                _typed(array, (dtypes or {}).get(name)) for name, array in zip(names, arrays, strict=True)
            ]
        yield pa.RecordBatch.from_arrays(list(arrays), names=names)


def neutralise_formulas(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with every text cell that a spreadsheet would run as a formula prefixed with ``'``.

    OWASP's CSV-injection rule: a string cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
    return gets a leading single quote, so Excel, LibreOffice and Google Sheets show it as text. Numeric
    columns are not touched (a negative number stays a number), nor are text cells that are plain number
    literals such as ``-12.5``. Only the CSV output uses it: Parquet and JSON Lines keep their cells.
    """
    arrays = []
    for array in batch.columns:
        if pa.types.is_dictionary(array.type) and pa.types.is_string(array.type.value_type):
            array = array.cast(pa.string())
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            risky = pc.and_not(
                pc.match_substring_regex(array, FORMULA_START),
                pc.match_substring_regex(array, _NUMBER_LITERAL),
            )
            array = pc.if_else(pc.fill_null(risky, False), pc.utf8_replace_slice(array, 0, 0, "'"), array)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=_csv_schema(batch.schema))


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with dictionary-encoded text as plain text (what :func:`neutralise_formulas` returns)."""
    fields = [
        field.with_type(pa.string())
        if pa.types.is_dictionary(field.type) and pa.types.is_string(field.type.value_type)
        else field
        for field in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def _restore_formulas(table: pa.Table) -> pa.Table:
    """Undo :func:`neutralise_formulas` (a leaked CSV copy carries the quotes; tracing hashes the text)."""
    for position, name in enumerate(table.column_names):
        column = table.column(position)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            quoted = pc.match_substring_regex(column, "^'" + FORMULA_START[1:])
            restored = pc.if_else(pc.fill_null(quoted, False), pc.utf8_slice_codeunits(column, 1), column)
            table = table.set_column(position, name, restored)
    return table


class _HashingFile(io.RawIOBase):
    """A write-only file that hashes and counts what goes through it.

    Besides the SHA-256 (the copy's content address, signed in its receipt) it takes the BLAKE3 that the
    download link offers for checking the transfer: BLAKE3 runs at 10 GB/s here against SHA-256's 2 GB/s,
    and hashing was what bounded `synthex download` (0.5 s of a 0.7 s GB). It adds 0.1 s per GB here."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self.digest = hashlib.sha256()
        self.blake3 = blake3.blake3()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.blake3.update(view)
        self.size += view.nbytes
        return self._file.write(view)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        super().close()


class _Writer:
    def __init__(self, sink: _HashingFile, fmt: str, schema: pa.Schema) -> None:
        self.fmt = fmt
        self.sink = sink
        self.schema = schema
        self._writer: Any = None
        if fmt == "csv":
            self._writer = pa_csv.CSVWriter(sink, _csv_schema(schema))
        elif fmt == "parquet":
            self._writer = pq.ParquetWriter(sink, schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.schema != self.schema:
            batch = batch.cast(self.schema)
        if self.fmt == "jsonl":
            text = batch.to_pandas().to_json(
                orient="records", lines=True, double_precision=15, date_format="iso"
            )
            if text and not text.endswith("\n"):
                text += "\n"
            self.sink.write(text.encode("utf-8"))
        elif self.fmt == "csv":
            self._writer.write_batch(neutralise_formulas(batch))
        else:
            self._writer.write_batch(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def plan_file(path: Path, fmt: str, dtypes: Mapping[str, str] | None = None) -> FingerprintPlan:
    """The fingerprint plan of a source file (one streamed pass)."""
    return plan_table(read_batches(path, fmt, dtypes))


def convert(
    source: Path,
    source_format: str,
    target: Path,
    target_format: str,
    *,
    plan: FingerprintPlan,
    key: bytes,
    dtypes: Mapping[str, str] | None = None,
    max_rows: int | None = None,
) -> Converted:
    """Write ``source`` to ``target`` in ``target_format``, marked with ``key`` (the rows that key omits are
    left out), hashing on the way.

    Rows kept keep their order and values, columns their names and order; with ``max_rows`` the copy ends
    after that many rows. Raises ValueError for an unknown format.
    """
    if target_format not in FORMATS:
        raise ValueError(f"unknown format {target_format!r}; use one of {', '.join(FORMATS)}")
    marker = Marker(plan, key, max_rows)
    sink = _HashingFile(target)
    rows = 0
    writer: _Writer | None = None
    try:
        for batch in read_batches(source, source_format, dtypes):
            marked = marker.mark(batch)
            if writer is None:
                writer = _Writer(sink, target_format, marked.schema)
            writer.write(marked)
            rows += marked.num_rows
        if writer is None:
            raise ValueError(f"{source.name} has no rows")
        writer.close()
    finally:
        sink.close()
    return Converted(sink.digest.hexdigest(), sink.blake3.hexdigest(), sink.size, rows, marker.stats.omitted)


def write_table(table: pa.Table, target: Path, target_format: str) -> Converted:
    """Write an in-memory ``table`` (already marked) to ``target`` in ``target_format`` as :func:`convert`
    writes (formula-like CSV cells neutralised), hashing on the way."""
    if target_format not in FORMATS:
        raise ValueError(f"unknown format {target_format!r}; use one of {', '.join(FORMATS)}")
    sink = _HashingFile(target)
    try:
        writer = _Writer(sink, target_format, table.schema)
        for batch in table.to_batches(max_chunksize=65_536):
            writer.write(batch)
        writer.close()
    finally:
        sink.close()
    return Converted(sink.digest.hexdigest(), sink.blake3.hexdigest(), sink.size, table.num_rows, 0)


def read_any(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a (possibly leaked, possibly re-saved) table of any of the three formats, sniffed by content.

    CSV and JSON Lines columns come back as strings, Parquet with its stored types.
    """
    with path.open("rb") as handle:
        head = handle.read(4)
    fmt = "parquet" if head == b"PAR1" else ("jsonl" if _first_text_char(path) == "{" else "csv")
    batches = list(read_batches(path, fmt))
    if not batches:
        raise ValueError(f"{path.name} has no rows")
    table = _restore_formulas(pa.Table.from_batches(batches))
    return table if columns is None else table.select(list(columns))


def _first_text_char(path: Path) -> str:
    with path.open("rb") as handle:
        text = handle.read(_READ_CHUNK).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    return text[:1]
