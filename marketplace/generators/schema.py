"""The declared schema of a generator and the check of what comes out of the sandbox against it.

Pure: imports pyarrow, no Django. The output file is untrusted (a model made it); only its Parquet footer
is read before the checks pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import pyarrow as pa


class OutputInvalid(Exception):
    """The sandbox's output does not match the declared schema; ``message`` names what differs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DeclaredColumn:
    name: str
    sdtype: str


@dataclass(frozen=True)
class DeclaredSchema:
    """Columns in order with their SDV sdtypes (numerical, categorical, boolean, datetime, id, or PII)."""

    columns: tuple[DeclaredColumn, ...]

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @classmethod
    def from_sdv_metadata(cls, metadata: dict[str, Any]) -> DeclaredSchema:
        columns = metadata.get("columns", {}) if isinstance(metadata, dict) else {}
        return cls(
            tuple(DeclaredColumn(str(name), str(spec.get("sdtype", ""))) for name, spec in columns.items())
        )


def _type_fits(sdtype: str, data_type: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_null(data_type):
        return True
    if sdtype == "numerical":
        return pa.types.is_integer(data_type) or pa.types.is_floating(data_type)
    if sdtype == "boolean":
        return pa.types.is_boolean(data_type) or pa.types.is_integer(data_type)
    if sdtype == "datetime":
        return pa.types.is_timestamp(data_type) or pa.types.is_date(data_type) or _is_text(data_type)
    if sdtype in ("categorical", "id"):
        return (
            _is_text(data_type)
            or pa.types.is_integer(data_type)
            or pa.types.is_floating(data_type)
            or pa.types.is_boolean(data_type)
            or pa.types.is_dictionary(data_type)
        )
    return _is_text(data_type) or pa.types.is_dictionary(data_type)


def _is_text(data_type: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


def check_output(source: Path | BinaryIO, schema: DeclaredSchema, rows: int) -> int:
    """Check the Parquet file ``source`` has exactly the declared columns (names, order, fitting types)
    and exactly ``rows`` rows; return the row count or raise ``OutputInvalid`` naming the first difference.

    Pass the file a sandbox wrote as the file object ``sandbox.open_output`` returned, never as its path.
    The refusal names no path.
    """
    # pyarrow loads here, in the worker that checks a draw, not in every web process.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source)
    except (OSError, pa.ArrowException) as error:
        detail = str(error) if isinstance(error, pa.ArrowException) else (error.strerror or "unreadable")
        raise OutputInvalid(
            "bad_output", f"The model's output is not a readable Parquet file ({detail})."
        ) from None
    arrow_schema = parquet.schema_arrow
    got = list(arrow_schema.names)
    expected = schema.names
    if got != expected:
        missing = [name for name in expected if name not in got]
        extra = [name for name in got if name not in expected]
        detail = "; ".join(
            part
            for part in (
                f"missing: {', '.join(missing)}" if missing else "",
                f"unexpected: {', '.join(extra)}" if extra else "",
                "same columns in another order" if not missing and not extra else "",
            )
            if part
        )
        raise OutputInvalid("wrong_columns", f"The model returned other columns than declared ({detail}).")
    for column in schema.columns:
        data_type = arrow_schema.field(column.name).type
        if not _type_fits(column.sdtype, data_type):
            raise OutputInvalid(
                "wrong_types",
                f"Column {column.name!r} is declared {column.sdtype} but the model returned {data_type}.",
            )
    count = parquet.metadata.num_rows
    if count != rows:
        raise OutputInvalid("wrong_row_count", f"The model returned {count} rows; {rows} were requested.")
    return count
