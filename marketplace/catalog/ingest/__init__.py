"""Upload ingest core: sniff, hash while copying, validate and profile tables, detect SDV metadata.

Pure Python over numpy, pandas and pyarrow: no Django. The upload view streams the request through
``copy_stream`` into storage, passes the first bytes to ``sniff_format`` and the stored file to
``profile_table``; every refusal is an ``IngestError`` whose ``code`` and ``message`` go to the user.
"""

from typing import TYPE_CHECKING, Any

from marketplace.catalog.ingest.errors import ERROR_CODES, IngestError
from marketplace.catalog.ingest.metadata import SDTYPES, apply_metadata_overrides
from marketplace.catalog.ingest.sniff import SNIFF_BYTES, TABLE_FORMATS, sniff_format
from marketplace.catalog.ingest.streams import HashingWriter, copy_stream

if TYPE_CHECKING:
    from marketplace.catalog.ingest.profile import ColumnProfile, TableProfile, profile_table
    from marketplace.catalog.ingest.read import read_table, sample_table

# Profiling and reading need numpy, pandas and pyarrow (about 100 MB per process): they load on first
# use, so web processes that only serve pages and downloads stay small.
_LAZY = {
    "ColumnProfile": "profile",
    "TableProfile": "profile",
    "profile_table": "profile",
    "read_table": "read",
    "sample_table": "read",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"marketplace.catalog.ingest.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ERROR_CODES",
    "SDTYPES",
    "SNIFF_BYTES",
    "TABLE_FORMATS",
    "ColumnProfile",
    "HashingWriter",
    "IngestError",
    "TableProfile",
    "apply_metadata_overrides",
    "copy_stream",
    "profile_table",
    "read_table",
    "sample_table",
    "sniff_format",
]
