"""Deciding a file's table format from its first bytes and its name, refusing anything that is not a table."""

from __future__ import annotations

import re
from pathlib import PurePath

from marketplace.catalog.ingest.errors import IngestError

TABLE_FORMATS = ("csv", "parquet", "jsonl")

# How many leading bytes callers should pass to ``sniff_format``.
SNIFF_BYTES = 8192

_EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

_FORMAT_NAMES = {"csv": "CSV", "parquet": "Parquet", "jsonl": "JSON Lines"}

# (prefix, description), checked in order at offset 0.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"PK\x07\x08", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "a Zstandard archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O or Java class file"),
    (b"#!", "a script"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Office (OLE2) document"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"ARROW1", "an Arrow IPC file"),
    (b"Obj\x01", "an Avro file"),
    (b"\x00asm", "a WebAssembly module"),
)

# Protocol 2+ pickles start with PROTO (0x80) and the protocol number; protocol 0/1 pickles start with an
# opcode such as MARK "(" followed by dict/list/tuple opcodes, or GLOBAL "c" with "module\nname\n".
_PICKLE_PATTERNS = (
    re.compile(rb"\A\x80[\x01-\x05]"),
    re.compile(rb"\A\((?:dp|lp|tp|i|c)[\w.]*\n"),
    re.compile(rb"\A\(?c[a-z_][\w.]*\n[A-Za-z_]\w*\n(?:\(|q.|p\d+\n|\)|\x85|\x86|\x87)", re.DOTALL),
    re.compile(rb"\A\]q\x00"),
    re.compile(rb"\A\}q\x00"),
)

_UTF8_BOM = b"\xef\xbb\xbf"


def _binary_kind(head: bytes) -> str | None:
    if any(pattern.match(head) for pattern in _PICKLE_PATTERNS):
        return "a Python pickle"
    for prefix, description in _BINARY_MAGIC:
        if head.startswith(prefix):
            return description
    if head.startswith(b"MZ") and b"\x00" in head[:64]:
        return "a Windows executable"
    if re.match(rb"\ABZh[1-9]1AY&SY", head):
        return "a bzip2 archive"
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return "a RIFF media file"
    if head[4:8] == b"ftyp":
        return "an MP4/HEIF media file"
    return None


def _text_kind(head: bytes) -> str:
    """``"jsonl"`` when the first non-blank character opens a JSON object, else ``"csv"``."""
    stripped = head.removeprefix(_UTF8_BOM).lstrip(b" \t\r\n")
    return "jsonl" if stripped.startswith(b"{") else "csv"


def sniff_format(head: bytes, filename: str) -> str:
    """The table format (one of ``TABLE_FORMATS``) of a file whose first bytes are ``head``.

    ``head`` should be the first ``SNIFF_BYTES`` bytes (fewer when the file is shorter). The content decides;
    the extension of ``filename`` must agree with it. Raises ``IngestError`` with code ``empty_file`` (no
    bytes or only whitespace), ``disguised_binary`` (pickle, archive, executable, script, PDF, image, ...
    whatever the name says), ``format_mismatch`` (a ``.csv`` holding Parquet bytes, and the like: both
    formats are named), ``nul_bytes``/``undecodable`` (text with NUL bytes, UTF-16) or
    ``unsupported_format`` (an extension that is not a table format).
    """
    name = PurePath(filename).name or "the file"
    if not head or not head.strip():
        raise IngestError("empty_file", f"{name} is empty: there is no data to read.")
    binary = _binary_kind(head)
    if binary is not None:
        raise IngestError(
            "disguised_binary",
            f"{name} is {binary}, not a table. Upload CSV, Parquet or JSON Lines files.",
        )
    if head.startswith(b"PAR1"):
        content = "parquet"
    else:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise IngestError(
                "undecodable", f"{name} is encoded as UTF-16; save it as UTF-8 and upload it again."
            )
        nul = head.find(b"\x00")
        if nul >= 0:
            raise IngestError(
                "nul_bytes",
                f"{name} contains a NUL byte at byte offset {nul}: it looks like a binary file, not text.",
            )
        content = _text_kind(head)

    suffix = PurePath(filename).suffix.lower()
    if not suffix:
        return content
    claimed = _EXTENSIONS.get(suffix)
    if claimed is None:
        raise IngestError(
            "unsupported_format",
            f"{name} has the extension {suffix!r}; upload tables as .csv, .parquet or .jsonl files.",
        )
    if claimed != content:
        raise IngestError(
            "format_mismatch",
            f"{name} is named as {_FORMAT_NAMES[claimed]} but its content is "
            f"{_FORMAT_NAMES[content]}; rename it or upload the right file.",
        )
    return content
