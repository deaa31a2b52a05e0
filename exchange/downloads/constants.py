"""Delivery formats and their content types (kept apart so the serving path imports no pyarrow/pandas)."""

FORMATS = ("csv", "parquet", "jsonl")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
}
# A table set (every table of a relational version or of an HMA draw) travels as one zip.
SET_CONTENT_TYPE = "application/zip"
