"""SDV's ``HMASynthesizer`` on a set of related tables: schema checks, the fit with progress, entity draws,
and the one format an entity set travels in (a zip of Parquet tables). No Django: the worker calls it, tests
import it with Django unconfigured.

A draw counts **entity rows**: rows of the entity table (the first parent table, parents first, with at least
200 rows; ``relational_schema.entity_table``). SDV samples ``rows`` of it and scales every other table by
the same factor, so children come with their parents and lookup tables shrink or grow in proportion.

The set format (``synthex.table-set/v1``): a zip whose members are ``<table>.parquet``, stored (never
compressed, so what a member holds is what the archive's size counts), one per table of the metadata.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from marketplace.certification.engine.relational_schema import (
    RelationalError,
    RelationalSchema,
    entity_table,
    parse_metadata,
    validate_tables,
)
from marketplace.generators.runner import sample_entity_set, write_table_set
from marketplace.generators.schema import DeclaredSchema, OutputInvalid, check_output

if TYPE_CHECKING:
    import pandas as pd

# SDV's community HMASynthesizer refuses larger schemas (``_validate_schema_complexity``).
MAX_TABLES = 5
MAX_DEPTH = 2
SET_MEMBER_SUFFIX = ".parquet"

Progress = Callable[[str, int], None]


class HmaRefused(Exception):
    """A set HMA cannot take or an output that is not a valid set; ``message`` names table and problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class HmaPlan:
    """What a fit needs to know about the set: its parsed schema and the table whose rows are counted."""

    schema: RelationalSchema
    entity_table: str


def _depth(schema: RelationalSchema) -> int:
    """Tables on the longest parent → child path (1 for a table with no parent)."""
    depth: dict[str, int] = {}
    for name in schema.order:
        parents = [r.parent for r in schema.relationships if r.child == name]
        depth[name] = 1 + max((depth[parent] for parent in parents), default=0)
    return max(depth.values(), default=0)


def plan_fit(tables: Mapping[str, pd.DataFrame], metadata: dict) -> HmaPlan:
    """Check that ``tables`` are a valid set for ``metadata`` (keys, orphans, cycles: ``RelationalError``)
    and that HMA can model it (at most ``MAX_TABLES`` tables, parent → child paths of at most ``MAX_DEPTH``
    tables: ``HmaRefused``); return the schema and the entity table."""
    schema = parse_metadata(metadata)
    validate_tables(tables, schema, "data")
    if len(schema.tables) > MAX_TABLES:
        raise HmaRefused(
            "too_many_tables",
            f"HMA models at most {MAX_TABLES} tables; this set has {len(schema.tables)}.",
        )
    depth = _depth(schema)
    if depth > MAX_DEPTH:
        raise HmaRefused(
            "schema_too_deep",
            f"HMA models one level of parents and children; this set chains {depth} tables "
            f"({' → '.join(schema.order)}). Leave out the top table (or fold it into its children's columns).",
        )
    return HmaPlan(schema=schema, entity_table=entity_table(tables, schema))


class _StageProgress(io.TextIOBase):
    """Reads the tqdm bars HMA prints (``verbose``) and reports the stage and the fit's share done.

    HMA prints three stages: "Preprocess Tables", one bar per relationship under "Learning relationships"
    (by far the longest: one child model per parent row), then "Modeling Tables".
    """

    BAR = re.compile(r"^(?P<label>.*?):\s+\d+%\|.*?\|\s*(?P<done>\d+)/(?P<total>\d+)")
    RELATIONSHIP = re.compile(r"^\((?P<index>\d+)/(?P<count>\d+)\)")
    SPANS = {"Preprocess Tables": (0, 10), "Modeling Tables": (90, 100)}

    def __init__(self, report: Progress) -> None:
        self.report = report
        self.last = ("", -1)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for line in re.split(r"[\r\n]", text):
            match = self.BAR.match(line.strip())
            if match is None:
                continue
            label = match["label"].strip()
            done, total = int(match["done"]), max(int(match["total"]), 1)
            low, high, stage = self._span(label)
            percent = low + (high - low) * done // total
            if (stage, percent) != self.last:
                self.last = (stage, percent)
                self.report(stage, percent)
        return len(text)

    def _span(self, label: str) -> tuple[int, int, str]:
        """(low, high, stage) of a bar: its fixed span, or relationship i of n's share of 10–90 %."""
        if label in self.SPANS:
            return (*self.SPANS[label], label)
        relationship = self.RELATIONSHIP.match(label)
        if relationship is None:
            return 10, 90, label
        index, count = int(relationship["index"]), max(int(relationship["count"]), 1)
        low, high = 10 + 80 * (index - 1) // count, 10 + 80 * index // count
        return low, high, f"learning relationships ({index}/{count})"


def fit_hma(tables: Mapping[str, pd.DataFrame], metadata: dict, *, seed: int, progress: Progress) -> Any:
    """Fit an ``HMASynthesizer`` on ``tables``; ``progress(stage, percent 0–100)`` follows HMA's own bars.

    Raises ``HmaRefused("fit_failed")`` with SDV's message when SDV refuses the data."""
    import numpy as np
    from sdv.metadata import Metadata
    from sdv.multi_table import HMASynthesizer

    np.random.seed(seed % 2**32)
    with (
        contextlib.redirect_stderr(_StageProgress(progress)),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            model = HMASynthesizer(Metadata.load_from_dict(metadata), verbose=True)
            model.fit(dict(tables))
        except Exception as error:
            raise HmaRefused("fit_failed", f"Fitting HMA failed: {error}") from error
    progress("fitted", 100)
    return model


def sample_entities(model: Any, *, entity: str, rows: int, seed: int) -> dict[str, pd.DataFrame]:
    """``rows`` entity rows with their children (lookup tables scaled alike) from a fitted HMA model; the
    same function the sandbox runs on a stored model (``runner.sample_entity_set``)."""
    return sample_entity_set(model, entity, rows, seed)


def write_set(tables: Mapping[str, pd.DataFrame], target: Path | BinaryIO) -> None:
    """Write ``tables`` as a table-set zip (one stored ``<table>.parquet`` member per table)."""
    write_table_set(tables, target)


def _members(archive: zipfile.ZipFile, schema: RelationalSchema) -> dict[str, zipfile.ZipInfo]:
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise OutputInvalid("bad_output", "The model's table set holds a compressed member.")
        members[info.filename.removesuffix(SET_MEMBER_SUFFIX)] = info
    expected = sorted(schema.tables)
    if sorted(members) != expected or len(members) != len(archive.infolist()):
        raise OutputInvalid(
            "wrong_tables", f"The model returned other tables than declared (expected {', '.join(expected)})."
        )
    return members


def read_checked_set(source: BinaryIO, metadata: dict, *, entity: str, rows: int) -> dict[str, pd.DataFrame]:
    """Read a table-set zip a model wrote without trusting it: exactly the declared tables, each with the
    declared columns in order and fitting types (``schema.check_output``), ``rows`` entity rows, unique
    primary keys and no orphans. Raises ``OutputInvalid`` naming the first difference (never a path)."""
    import pandas as pd

    schema = parse_metadata(metadata)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise OutputInvalid("bad_output", "The model's output is not a table-set zip.") from None
    frames: dict[str, pd.DataFrame] = {}
    with archive:
        for name, info in _members(archive, schema).items():
            data = io.BytesIO(archive.read(info))
            declared = _declared(schema.tables[name])
            try:
                expected_rows = rows if name == entity else _row_count(data)
                check_output(data, declared, expected_rows)
            except OutputInvalid as error:
                raise OutputInvalid(error.code, f"Table {name}: {error.message}") from None
            data.seek(0)
            frames[name] = pd.read_parquet(data)
    try:
        validate_tables(frames, schema, "sample")
    except RelationalError as error:
        raise OutputInvalid("broken_set", f"The model's tables do not hold together: {error}") from None
    return frames


def _declared(table: dict) -> DeclaredSchema:
    """A table's declared columns; SDV 2.0's ``ordinal`` (whole numbers or labels in order, as SDV detects
    them on related tables) is checked as categorical."""
    columns = {
        name: {**spec, "sdtype": "categorical" if spec.get("sdtype") == "ordinal" else spec.get("sdtype")}
        for name, spec in (table.get("columns") or {}).items()
    }
    return DeclaredSchema.from_sdv_metadata({"columns": columns})


def _row_count(data: BinaryIO) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        count = int(pq.ParquetFile(data).metadata.num_rows)
    except (OSError, pa.ArrowException):
        raise OutputInvalid("bad_output", "A member is not a readable Parquet file.") from None
    data.seek(0)
    return count
