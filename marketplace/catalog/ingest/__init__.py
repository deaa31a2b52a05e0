"""Upload ingest core: sniff, hash while copying, validate and profile tables, detect SDV metadata.

Pure Python over numpy, pandas and pyarrow: no Django. The upload view streams the request through
``copy_stream`` into storage, passes the first bytes to ``sniff_format`` and the stored file to
``profile_table``; every refusal is an ``IngestError`` whose ``code`` and ``message`` go to the user.
"""

from marketplace.catalog.ingest.errors import ERROR_CODES, IngestError
from marketplace.catalog.ingest.metadata import SDTYPES, apply_metadata_overrides
from marketplace.catalog.ingest.profile import ColumnProfile, TableProfile, profile_table
from marketplace.catalog.ingest.read import read_table, sample_table
from marketplace.catalog.ingest.sniff import SNIFF_BYTES, TABLE_FORMATS, sniff_format
from marketplace.catalog.ingest.streams import HashingWriter, copy_stream

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
