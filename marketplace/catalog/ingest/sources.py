"""Reading CSV, Parquet and JSON Lines files as a stream of Arrow batches, turning every defect into IngestError.

CSV and JSON Lines columns come out as Arrow strings (typing happens in ``profile``); Parquet columns keep
their stored types. Memory is bounded by a few batches (``BLOCK_BYTES`` of CSV text, ``JSONL_BATCH_ROWS`` lines,
or one Parquet row-group slice of ``PARQUET_BATCH_ROWS`` rows).
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from marketplace.catalog.ingest.errors import IngestError

SCAN_CHUNK_BYTES = 2 << 20
BLOCK_BYTES = 512 << 10
JSONL_BATCH_ROWS = 50_000
PARQUET_BATCH_ROWS = 65_536
# Bounds on the work one file can cause, whatever a small compressed file expands to (issue 18.6: a
# 2.8 KB Parquet file of 64 MiB strings pinned a web thread for 13 minutes).
MAX_TABLE_BYTES = 16 << 30
MAX_COLUMNS = 2_000
MAX_JSON_DEPTH = 32
# Parquet batches hold about this many uncompressed bytes (fewer rows when rows are wide).
PARQUET_BATCH_BYTES = 64 << 20

_UTF8_BOM = b"\xef\xbb\xbf"


def use_returning_arrow_allocator() -> bool:
    """Make Arrow allocate with jemalloc, which hands freed memory back to the system; True if switched.

    Arrow's default (mimalloc) keeps freed pages for reuse, so streaming a large file through the CSV
    reader grew a web worker by 128-140 MB against 99-103 MB with jemalloc, at the same speed (profiling
    a 300 MB CSV), and an upload's validation must fit its budget (issue #2: < 300 MB). An explicit
    ``ARROW_DEFAULT_MEMORY_POOL`` is left alone, as are builds without jemalloc.

    Called when this module is imported, before Arrow allocates anything: switching later, at the first
    table opened, left what mimalloc had already reserved in the process and the 1 GB benchmark's peak
    went from 283-290 MB to 280-312 MB. Importing this module is itself the first use: the ingest
    package loads it lazily, so web processes that only serve pages never do.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return False
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        # Unused pages go back after a second: 0 (at once) saved another 15 MB but cost 45 % more time.
        pa.jemalloc_set_decay_ms(1000)
    except NotImplementedError:
        return False
    return True


use_returning_arrow_allocator()


@dataclass(frozen=True)
class TextScan:
    """What a scan measured: the longest row in bytes (what a parser's blocks must hold) and the number of
    lines (newlines, plus an unterminated last line; rows with quoted newlines count more than once)."""

    longest_row: int
    lines: int


def scan_text(
    path: Path, *, max_line_bytes: int, quoted: bool = False, progress: Callable[[int], None] | None = None
) -> TextScan:
    """Check that ``path`` is UTF-8 text without NUL bytes and without a row over ``max_line_bytes`` bytes;
    ``progress`` is told the bytes scanned so far after each chunk.

    Rows end at newlines; with ``quoted`` (CSV) only at newlines outside double quotes (an even number of
    quote characters before them; doubled quotes inside a field count twice, so the rule holds), which also
    catches a quote left open. Reads the file once in ``SCAN_CHUNK_BYTES`` chunks. Raises ``IngestError``
    with code ``nul_bytes``, ``undecodable`` or ``line_too_long``, naming the 1-based line and, for bytes,
    the 0-based byte offset.
    """
    name = path.name
    newlines = 0
    quotes = 0
    offset = 0
    last_boundary = -1
    lines_to_last_boundary = 0
    longest_row = 0
    carry = b""
    with path.open("rb") as stream:
        while chunk := stream.read(SCAN_CHUNK_BYTES):
            _refuse_nul(name, chunk, newlines, offset)
            carry = _undecoded_tail(name, carry, chunk, newlines, offset)
            line_ends, boundary_index, quotes = _row_ends(chunk, quotes, quoted=quoted)
            boundaries = line_ends[boundary_index] + offset
            if boundaries.size:
                starts = np.concatenate(([last_boundary], boundaries[:-1]))
                lengths = boundaries - starts - 1
                longest = int(lengths.argmax())
                longest_row = max(longest_row, int(lengths[longest]))
                if lengths[longest] > max_line_bytes:
                    before = (
                        lines_to_last_boundary
                        if longest == 0
                        else newlines + int(boundary_index[longest - 1]) + 1
                    )
                    _raise_line_too_long(name, before + 1, max_line_bytes)
                last_boundary = int(boundaries[-1])
                lines_to_last_boundary = newlines + int(boundary_index[-1]) + 1
            newlines += int(line_ends.size)
            offset += len(chunk)
            if progress is not None:
                progress(offset)
            if offset - last_boundary - 1 > max_line_bytes:
                _raise_line_too_long(name, lines_to_last_boundary + 1, max_line_bytes)
    if carry:
        raise IngestError(
            "undecodable",
            f"{name} is not valid UTF-8: it ends in the middle of a character (byte offset {offset - len(carry)}).",
        )
    tail = offset - last_boundary - 1
    return TextScan(longest_row=max(longest_row, tail), lines=newlines + (1 if tail > 0 else 0))


def _row_ends(chunk: bytes, quotes: int, *, quoted: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """(positions of the chunk's newlines, indexes of those that end a row, quote characters seen so far
    including this chunk's). With ``quoted`` a newline ends a row only outside double quotes (``quotes``
    counted before the chunk is even)."""
    raw = np.frombuffer(chunk, dtype=np.uint8)
    line_ends = np.flatnonzero(raw == 10)
    if not quoted:
        return line_ends, np.arange(line_ends.size), quotes
    quote_positions = np.flatnonzero(raw == 34)
    outside = (quotes + np.searchsorted(quote_positions, line_ends)) % 2 == 0
    return line_ends, np.flatnonzero(outside), quotes + int(quote_positions.size)


def _refuse_nul(name: str, chunk: bytes, newlines: int, offset: int) -> None:
    """IngestError ``nul_bytes`` when ``chunk`` (read at byte ``offset``, after ``newlines`` lines) has a NUL."""
    nul = chunk.find(b"\x00")
    if nul >= 0:
        line = newlines + chunk.count(b"\n", 0, nul) + 1
        raise IngestError(
            "nul_bytes",
            f"{name} contains a NUL byte on line {line} (byte offset {offset + nul}); "
            "text tables cannot contain NUL bytes.",
        )


def _undecoded_tail(name: str, carry: bytes, chunk: bytes, newlines: int, offset: int) -> bytes:
    """The end of ``carry + chunk`` that stops inside a character (decoded with the next chunk); IngestError
    ``undecodable`` naming line and byte offset when the bytes are not UTF-8."""
    data = carry + chunk
    try:
        _, consumed = codecs.utf_8_decode(data, "strict", False)
    except UnicodeDecodeError as error:
        position = offset - len(carry) + error.start
        line = newlines + chunk.count(b"\n", 0, max(0, error.start - len(carry))) + 1
        raise IngestError(
            "undecodable",
            f"{name} is not valid UTF-8: byte 0x{data[error.start]:02x} on line {line} "
            f"(byte offset {position}) cannot be decoded. Save the file as UTF-8.",
        ) from None
    return data[consumed:]


def _raise_line_too_long(name: str, line: int, max_line_bytes: int) -> None:
    raise IngestError(
        "line_too_long",
        f"The row on line {line} of {name} is longer than {_bytes_words(max_line_bytes)}; "
        "rows that long are not supported (is a quote left open?).",
    )


def _bytes_words(size: int) -> str:
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return f"{size >> 20} MB"
    if size >= 1 << 10 and size % (1 << 10) == 0:
        return f"{size >> 10} KB"
    return f"{size} bytes"


def check_column_names(names: list[str], name: str, where: str) -> None:
    """Refuse empty (blank) and duplicate column names, naming the column's position and ``where`` it is."""
    seen: dict[str, int] = {}
    for position, column in enumerate(names, start=1):
        if not column.strip():
            raise IngestError(
                "empty_column_name",
                f"Column {position} of {name} has an empty name in {where}; every column needs a name.",
            )
        if column in seen:
            raise IngestError(
                "duplicate_columns",
                f"{name} has two columns named {column!r} (columns {seen[column]} and {position}) in {where}.",
            )
        seen[column] = position


class TableSource:
    """One table file opened for streaming: ``names`` and ``batches()`` of Arrow arrays in column order."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        *,
        max_line_bytes: int,
        longest_row: int | None = None,
        max_table_bytes: int = MAX_TABLE_BYTES,
    ) -> None:
        """``longest_row``: the longest row's length when known (``scan_text`` measures it), else rows
        are only known to be at most ``max_line_bytes``. ``max_table_bytes``: the most a Parquet file
        may expand to (its footer's uncompressed sizes)."""
        self.path = path
        self.fmt = fmt
        self.max_line_bytes = max_line_bytes
        self.max_table_bytes = max_table_bytes
        self.parquet_batch_rows = PARQUET_BATCH_ROWS
        self.parquet_text_columns: list[str] = []
        # A row must fit in one block (pyarrow refuses rows that straddle blocks). Small blocks keep
        # pyarrow's buffers small: profiling a 1 GB CSV peaked at 246 MB with 1 MiB blocks and at 209 MB
        # with 512 KiB, at the same speed (256 KiB: 195 MB but 10 % slower).
        bound = max_line_bytes if longest_row is None else min(longest_row, max_line_bytes)
        self.block_bytes = max(BLOCK_BYTES, bound + (64 << 10))
        self.parquet_rows: int | None = None  # from a Parquet file's footer
        if fmt == "csv":
            self.names = self._csv_names()
            where = "the header"
        elif fmt == "parquet":
            self.names = self._parquet_names()
            where = "the schema"
        else:
            self.names = self._jsonl_names()
            where = "line 1"
        if not self.names:
            raise IngestError("no_rows", f"{path.name} has no columns.")
        if len(self.names) > MAX_COLUMNS:
            raise IngestError(
                "too_many_columns",
                f"{path.name} has {len(self.names):,} columns; at most {MAX_COLUMNS:,} are supported.",
            )
        check_column_names(self.names, path.name, where)

    def batches(self, columns: list[str] | None = None) -> Iterator[list[pa.Array]]:
        """Yield the table in batches, each a list of arrays for ``columns`` (default: all, in order)."""
        wanted = list(self.names) if columns is None else columns
        if self.fmt == "csv":
            yield from self._csv_batches(wanted)
        elif self.fmt == "parquet":
            yield from self._parquet_batches(wanted)
        else:
            yield from self._jsonl_batches(wanted)

    # CSV

    def _csv_reader(self, convert_options: pa_csv.ConvertOptions | None, handler: Any = None) -> Any:
        return pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(block_size=self.block_bytes),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=handler),
            convert_options=convert_options,
        )

    def _csv_names(self) -> list[str]:
        try:
            reader = self._csv_reader(pa_csv.ConvertOptions(include_columns=None))
        except pa.ArrowInvalid as error:
            self._raise_csv_problem(error, expected=None)
        names = list(reader.schema.names)
        reader.close()
        return names

    def _csv_batches(self, wanted: list[str]) -> Iterator[list[pa.Array]]:
        def record_first_invalid(row: Any) -> str:
            return "error"

        convert = pa_csv.ConvertOptions(
            column_types={column: pa.string() for column in self.names},
            include_columns=wanted,
            strings_can_be_null=True,
        )
        try:
            reader = self._csv_reader(convert, record_first_invalid)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                yield [batch.column(index) for index in range(batch.num_columns)]
        except pa.ArrowInvalid as error:
            self._raise_csv_problem(error, expected=len(self.names))

    def _raise_csv_problem(self, error: Exception, expected: int | None) -> Any:
        """Re-read the file with Python's csv module to name the line pyarrow could not parse."""
        name = self.path.name
        previous_limit = csv.field_size_limit()
        # The scan already bounded lines to max_line_bytes; only an unclosed quote can make a longer field.
        csv.field_size_limit(min(sys.maxsize, max(previous_limit, 2 * self.max_line_bytes)))
        try:
            with self.path.open("r", encoding="utf-8-sig", newline="") as text:
                reader = csv.reader(text, strict=True)
                width = expected
                records = 0
                try:
                    for record in reader:
                        if not record:
                            continue
                        records += 1
                        if width is None:
                            width = len(record)
                        elif len(record) != width:
                            raise IngestError(
                                "ragged_rows",
                                f"Line {reader.line_num} of {name} has {len(record)} fields but the header has "
                                f"{width}; every row must have the same number of columns.",
                            )
                except csv.Error as csv_error:
                    kind = "line_too_long" if "field larger" in str(csv_error) else "ragged_rows"
                    raise IngestError(
                        kind,
                        f"{name} cannot be parsed as CSV at line {reader.line_num}: {csv_error} "
                        "(is a quote left open?).",
                    ) from None
        finally:
            csv.field_size_limit(previous_limit)
        if records <= 1:
            # pyarrow cannot infer the columns of a lone header without a final newline.
            raise IngestError(
                "no_rows", f"{name} has a header but no rows; upload a table with at least one row."
            )
        if "straddling" in str(error):
            raise IngestError(
                "line_too_long",
                f"A row of {name} is longer than {_bytes_words(self.block_bytes)} (is a quote left open?).",
            ) from None
        raise IngestError("unreadable", f"{name} cannot be parsed as CSV: {error}") from None

    # Parquet

    def _parquet_file(self, read_dictionary: list[str] | None = None) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self.path, read_dictionary=read_dictionary)
        except (pa.ArrowException, OSError) as error:
            raise IngestError(
                "truncated_parquet",
                f"{self.path.name} is not a complete Parquet file (it may have been cut off): {error}",
            ) from None

    def _parquet_names(self) -> list[str]:
        parquet = self._parquet_file()
        try:
            self._check_parquet_sizes(parquet.metadata)
            names = list(parquet.schema_arrow.names)
            self.parquet_text_columns = [
                field.name
                for field in parquet.schema_arrow
                if pa.types.is_string(field.type)
                or pa.types.is_large_string(field.type)
                or pa.types.is_binary(field.type)
                or pa.types.is_large_binary(field.type)
            ]
            self.parquet_rows = parquet.metadata.num_rows
        finally:
            parquet.close()
        return names

    def _check_parquet_sizes(self, metadata: pq.FileMetaData) -> None:
        """Refuse, from the footer alone (before decompressing anything), a file that expands past
        ``max_table_bytes`` or whose column chunks average more than ``max_line_bytes`` a value; size the
        batches so that each holds about ``PARQUET_BATCH_BYTES``."""
        name = self.path.name
        if metadata.num_columns > MAX_COLUMNS:
            raise IngestError(
                "too_many_columns",
                f"{name} has {metadata.num_columns:,} columns; at most {MAX_COLUMNS:,} are supported.",
            )
        total = 0
        widest_row = 1
        for group_index in range(metadata.num_row_groups):
            group = metadata.row_group(group_index)
            rows = max(1, group.num_rows)
            total += group.total_byte_size
            widest_row = max(widest_row, group.total_byte_size // rows)
            for column_index in range(group.num_columns):
                column = group.column(column_index)
                if column.total_uncompressed_size > self.max_line_bytes * rows:
                    raise IngestError(
                        "cell_too_large",
                        f"Column {column.path_in_schema!r} of {name} holds values of more than "
                        f"{self.max_line_bytes:,} bytes on average; cells are limited to that size.",
                    )
        if total > self.max_table_bytes:
            raise IngestError(
                "too_large",
                f"{name} expands to {total:,} bytes when decompressed, over the limit of "
                f"{self.max_table_bytes:,} bytes.",
            )
        self.parquet_batch_rows = max(1, min(PARQUET_BATCH_ROWS, PARQUET_BATCH_BYTES // widest_row))

    def _parquet_batches(self, wanted: list[str]) -> Iterator[list[pa.Array]]:
        # Text columns are read as dictionaries, as most writers store them: a value repeated on many rows
        # stays one value until ``_bounded_slices`` has measured what decoding it would cost.
        parquet = self._parquet_file(read_dictionary=[c for c in self.parquet_text_columns if c in wanted])
        decoded = 0
        try:
            for batch in parquet.iter_batches(batch_size=self.parquet_batch_rows, columns=wanted):
                columns = [batch.column(index) for index in range(batch.num_columns)]
                for start, stop, size in self._bounded_slices(columns, wanted):
                    decoded += size
                    if decoded > self.max_table_bytes:
                        raise IngestError(
                            "too_large",
                            f"{self.path.name} expands to more than {self.max_table_bytes:,} bytes when "
                            "decompressed, the limit.",
                        )
                    yield [column.slice(start, stop - start) for column in columns]
        except (pa.ArrowException, OSError) as error:
            raise IngestError(
                "truncated_parquet",
                f"{self.path.name} is damaged or cut off and cannot be read to the end: {error}",
            ) from None
        finally:
            parquet.close()

    def _bounded_slices(self, columns: list[pa.Array], names: list[str]) -> Iterator[tuple[int, int, int]]:
        """Row ranges ``(start, stop, bytes)`` of a batch that each decode to about ``PARQUET_BATCH_BYTES``
        at most (one row at least), measured without decoding; refuses a cell over ``max_line_bytes``."""
        rows = len(columns[0]) if columns else 0
        row_bytes = np.zeros(rows, dtype=np.int64)
        for column, name in zip(columns, names, strict=True):
            lengths = _value_lengths(column)
            if lengths is None:
                row_bytes += _fixed_width(column.type)
                continue
            longest = int(lengths.max()) if lengths.size else 0
            if longest > self.max_line_bytes:
                raise IngestError(
                    "cell_too_large",
                    f"A value in column {name!r} of {self.path.name} is {longest:,} bytes long; cells are "
                    f"limited to {self.max_line_bytes:,} bytes.",
                )
            row_bytes += lengths
        ends = np.cumsum(row_bytes)
        start = 0
        while start < rows:
            base = int(ends[start - 1]) if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, base + PARQUET_BATCH_BYTES, side="right")))
            stop = min(stop, rows)
            yield start, stop, int(ends[stop - 1]) - base
            start = stop

    # JSON Lines

    def _jsonl_records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        name = self.path.name
        with self.path.open("rb") as stream:
            for line_number, raw in enumerate(stream, start=1):
                line = raw.removeprefix(_UTF8_BOM) if line_number == 1 else raw
                if not line.strip():
                    continue
                try:
                    value = json.loads(
                        line.rstrip(), object_pairs_hook=_unique_pairs, parse_constant=_no_constant
                    )
                except _DuplicateKey as duplicate:
                    raise IngestError(
                        "duplicate_columns",
                        f"Line {line_number} of {name} has the key {duplicate.key!r} twice.",
                    ) from None
                except json.JSONDecodeError as error:
                    raise IngestError(
                        "broken_jsonl",
                        f"Line {line_number} of {name} is not valid JSON: {error.msg} at column {error.pos + 1}.",
                    ) from None
                except RecursionError:  # nested far deeper than the limit: the parser gave up
                    raise _too_deep(name, line_number) from None
                openers = line.count(b"{") + line.count(b"[")  # a cheap bound on the depth first
                if openers > MAX_JSON_DEPTH and _depth_exceeds(value, MAX_JSON_DEPTH):
                    raise _too_deep(name, line_number)
                if not isinstance(value, dict):
                    raise IngestError(
                        "broken_jsonl",
                        f"Line {line_number} of {name} is a JSON {_json_kind(value)}, not an object; "
                        'each line must be one object such as {"column": value}.',
                    )
                yield line_number, value

    def _jsonl_names(self) -> list[str]:
        for _, record in self._jsonl_records():
            return list(record)
        return []

    def _jsonl_batches(self, wanted: list[str]) -> Iterator[list[pa.Array]]:
        known = set(self.names)
        buffers: list[list[str | None]] = [[] for _ in wanted]
        for line_number, record in self._jsonl_records():
            if not known.issuperset(record):
                extra = next(key for key in record if key not in known)
                raise IngestError(
                    "ragged_rows",
                    f"Line {line_number} of {self.path.name} has the key {extra!r}, which the first line "
                    "does not have; every line must use the first line's keys.",
                )
            for buffer, column in zip(buffers, wanted, strict=True):
                buffer.append(_json_text(record.get(column)))
            if len(buffers[0]) >= JSONL_BATCH_ROWS:
                yield [pa.array(buffer, type=pa.string()) for buffer in buffers]
                buffers = [[] for _ in wanted]
        if buffers[0]:
            yield [pa.array(buffer, type=pa.string()) for buffer in buffers]


def _too_deep(name: str, line_number: int) -> IngestError:
    return IngestError(
        "nesting_too_deep",
        f"Line {line_number} of {name} nests values more than {MAX_JSON_DEPTH} levels deep (the limit); "
        'each line must be a flat object such as {"column": value}.',
    )


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists or objects more than ``limit`` levels deep (the row object is level 1);
    iterative, so no depth can exhaust the stack."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _fixed_width(data_type: pa.DataType) -> int:
    """Bytes a value of a fixed-width type takes (8 for nested types, which profiling refuses anyway)."""
    try:
        return max(1, data_type.bit_width // 8)
    except ValueError:
        return 8


def _value_lengths(column: pa.Array) -> np.ndarray | None:
    """Each value's length in bytes (0 for nulls) for text and binary columns, dictionary-encoded or not,
    without decoding them; ``None`` for fixed-width columns."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        value_type = column.type.value_type
        if not (
            pa.types.is_string(value_type)
            or pa.types.is_binary(value_type)
            or pa.types.is_large_string(value_type)
            or pa.types.is_large_binary(value_type)
        ):
            return None
        per_value = pc.binary_length(column.dictionary)
        lengths = pc.take(per_value, column.indices)
    elif (
        pa.types.is_string(column.type)
        or pa.types.is_binary(column.type)
        or pa.types.is_large_string(column.type)
        or pa.types.is_large_binary(column.type)
    ):
        lengths = pc.binary_length(column)
    else:
        return None
    return np.asarray(lengths.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(constant: str) -> None:
    """JSON's non-standard NaN/Infinity literals read as missing values."""
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _json_text(value: Any) -> str | None:
    """A JSON value as the text typing works on: strings as they are, scalars as JSON, nesting as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
