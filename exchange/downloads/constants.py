"""Delivery formats and their content types (kept apart so the serving path imports no pyarrow/pandas)."""

FORMATS = ("csv", "parquet", "jsonl")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
}
