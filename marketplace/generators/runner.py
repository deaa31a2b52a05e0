"""The sandbox runner: the only code that ever unpickles a generator file. Runs INSIDE the sandbox.

It is started by ``marketplace.generators.sandbox`` as ``python -I runner.py JOB_DIR`` and imports nothing
from the project (the project folder is not visible inside the sandbox); the host imports it only for the
pure helpers (``row_hashes``, ``PROTOCOL``), never to run it.

Protocol ``synthex.sandbox/v1`` (all paths are file names inside ``JOB_DIR``, the one writable folder):

request.json (written by the host)::

    {"protocol": "synthex.sandbox/v1",
     "action": "ping" | "inspect" | "sample" | "sample_set",
     "model": "model.pkl",                      # not for ping
     "rows": 1000, "seed": 42,                  # sample: rows wanted (> 0) and the seed of the draw
     "entity_table": "persons",                 # sample_set: the table ``rows`` counts (a multi-table model)
     "conditions": {"column": value, ...},      # sample, optional: every row gets these values
     "batch_size": 100000,                      # sample: rows per Parquet row group
     "reference_hashes": "reference.hashes",    # inspect: one row hash per line (see ``row_hashes``)
     "columns": ["age", ...]}                   # inspect: the declared columns, in order

response.json (written by the runner; the host trusts none of it beyond messages and counts, and checks
the output file itself)::

    {"protocol": "synthex.sandbox/v1", "ok": true,
     "output": "output.parquet", "rows": 1000,             # sample
     "output": "output.zip", "tables": {"persons": 1000, "years": 4210},   # sample_set
     "model": {"class": "...", "metadata": {...}},         # inspect: the model's own SDV metadata
     "scan": {"objects": n, "frames": k, "rows_scanned": r, "matched_rows": m},   # inspect
     "seconds": {"load": 1.2, "work": 0.3}}
    {"protocol": "synthex.sandbox/v1", "ok": false, "error": {"code": "...", "message": "..."}}

output.parquet (sample): the rows, written in row groups of ``batch_size`` rows.
output.zip (sample_set): a table set, one stored ``<table>.parquet`` member per table (``write_table_set``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

PROTOCOL = "synthex.sandbox/v1"
SCAN_OBJECT_LIMIT = 2_000_000


def _canonical(values: Any) -> list[str]:
    """Each value of a column as text that is equal for equal values whatever the column's dtype."""
    import pandas as pd

    series = pd.Series(values)
    out: list[str] = []
    for value in series.tolist():
        if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
            out.append("\x00")
        elif isinstance(value, bool):
            out.append("b" + str(value))
        elif isinstance(value, int | float):
            out.append("n" + repr(float(value)))
        elif hasattr(value, "isoformat"):
            out.append("t" + value.isoformat())
        else:
            out.append("s" + str(value))
    return out


def row_hashes(frame: Any, columns: list[str]) -> list[str]:
    """SHA-256 (hex, first 32 characters) of each row of ``frame`` over ``columns``, in that order.

    Numbers hash by value (39 and 39.0 are equal), missing values are equal to each other, text by its
    characters; the host hashes reference rows and the runner hashes rows found inside a model the same way.
    """
    parts = [_canonical(frame[name]) for name in columns]
    return [
        hashlib.sha256("\x1f".join(cells).encode("utf-8", "surrogatepass")).hexdigest()[:32]
        for cells in zip(*parts, strict=True)
    ]


class RunnerError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _sample_roots_in_order(model: Any, first_root: str | None) -> Callable[..., dict[str, Any]]:
    """SDV 2.0's ``BaseHierarchicalSampler._sample`` with its root tables in a fixed order: ``first_root``
    (when it is one), then the metadata's table order. Each root is drawn with its descendants; a child of
    two roots is drawn under the first (its rows, its random draws), linked to the other by foreign key."""
    import warnings

    def sample(scale: float = 1.0, batch_size: int | None = None, max_tries_per_batch: int = 100) -> Any:
        metadata = model.metadata
        children = {r["child_table_name"] for r in metadata.relationships}
        roots = sorted((t for t in metadata.tables if t not in children), key=lambda t: t != first_root)
        options = {"batch_size": batch_size, "max_tries_per_batch": max_tries_per_batch}
        sampled: dict[str, Any] = {}
        for table in roots:
            count = round(model._table_sizes[table] * scale)
            if count <= 0:
                warnings.warn(
                    "The 'num_rows' parameter is too small. Some tables may have 1 row.", stacklevel=2
                )
            sampled[table] = model._sample_rows(model._table_synthesizers[table], max(count, 1), **options)
            model._sample_children(table_name=table, sampled_data=sampled, scale=scale, **options)
        linked: list[tuple[str, str]] = []
        for relationship in metadata.relationships:
            parent, child = relationship["parent_table_name"], relationship["child_table_name"]
            if (parent, child) not in linked:
                model._add_foreign_key_columns(sampled[child], sampled[parent], child, parent)
                linked.append((parent, child))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The metadata lists columns in a different order")
            sampled = model._reverse_transform_constraints(sampled)
        return model._finalize(sampled)

    return sample


@contextlib.contextmanager
def roots_in_order(model: Any, first_root: str | None = None) -> Iterator[None]:
    """Within: an SDV multi-table synthesizer (HMA) samples its root tables in a fixed order, not a set's.

    SDV 2.0's sampler loops over the root tables as a ``set`` of names, which iterates in an order that
    follows the interpreter's string hash seed, random in every process (``python -I``, the sandbox,
    ignores PYTHONHASHSEED). A child of two roots is drawn under whichever comes first: the demo's years
    under persons or under plans, another set (relational grade D or C) from the same model and seed.
    Within: ``first_root`` first, then the metadata's table order. An instance attribute only, gone on
    exit (a pickled model holds none of this code). Each parent's children are a set too, but their order
    was measured not to change a draw (persons → years, persons → visits: one set at hash seeds 0 and 1)."""
    if not getattr(getattr(model, "metadata", None), "relationships", None):
        yield
        return
    model._sample = _sample_roots_in_order(model, first_root)
    try:
        yield
    finally:
        vars(model).pop("_sample", None)


def sample_entity_set(model: Any, entity: str, rows: int, seed: int) -> dict[str, Any]:
    """``rows`` rows of table ``entity`` with their children from an SDV multi-table synthesizer (HMA), the
    other tables scaled by the same factor. SDV resets every table model to one fixed seed before sampling;
    the draw's seed replaces them, so draws with different seeds differ and equal seeds repeat a set, in any
    process (``roots_in_order``: a child of the entity and of a lookup table is drawn under the entity)."""
    import io
    import warnings

    with (
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
        roots_in_order(model, first_root=entity),
    ):
        warnings.simplefilter("ignore")
        model.reset_sampling()
        model._numpy_seed = seed % 2**32
        for index, table_model in enumerate(model._table_synthesizers.values()):
            table_model._set_random_state((seed + index) % 2**32)
        result = model.sample(num_rows=rows, main_table_name=entity)
    if not isinstance(result, dict):
        raise RunnerError("not_a_table_set", "The model did not return a set of tables.")
    return dict(result)


def write_table_set(tables: Mapping[str, Any], target: Any) -> None:
    """Write ``tables`` as a table-set zip: one stored (uncompressed) ``<table>.parquet`` member each."""
    import pandas as pd

    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, frame in tables.items():
            if not isinstance(frame, pd.DataFrame):
                raise RunnerError("not_a_table", f"The model returned {type(frame).__name__} for {name}.")
            with archive.open(f"{name}.parquet", "w") as member:
                frame.reset_index(drop=True).to_parquet(member, index=False)


def _load(path: str) -> Any:
    import pickle

    with open(path, "rb") as handle:
        model = pickle.load(handle)  # noqa: S301 - this process is the sandbox; that is its whole point
    if not callable(getattr(model, "sample", None)):
        raise RunnerError(
            "not_a_synthesizer", "The file does not hold an SDV synthesizer (no sample method)."
        )
    return model


def _seed(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def _frames(result: Any) -> Any:
    """SDV 2.0 returns a dict of one table for single-table synthesizers fitted on a dict."""
    if isinstance(result, dict):
        if len(result) != 1:
            raise RunnerError("wrong_tables", f"The model returned {len(result)} tables; one is expected.")
        return next(iter(result.values()))
    return result


def _batches(model: Any, rows: int, seed: int, conditions: dict[str, Any] | None, size: int) -> Iterator[Any]:
    import pandas as pd

    if hasattr(model, "reset_sampling"):
        model.reset_sampling()
    done = 0
    index = 0
    while done < rows:
        count = min(size, rows - done)
        _seed(seed + index)
        if conditions:
            from sdv.sampling import Condition

            try:
                frame = model.sample_from_conditions(
                    conditions=[Condition(num_rows=count, column_values=conditions)], max_tries_per_batch=50
                )
            except Exception:
                # SDV's message can quote what the model learnt from the private rows (ranges, categories).
                raise RunnerError(
                    "impossible_conditions", "The model could not make rows that meet the conditions."
                ) from None
        else:
            frame = model.sample(num_rows=count)
        frame = _frames(frame)
        if not isinstance(frame, pd.DataFrame):
            raise RunnerError("not_a_table", f"The model returned {type(frame).__name__}, not a table.")
        yield frame
        done += count
        index += 1


def _sample(job: str, request: dict[str, Any], model: Any) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, seed = int(request["rows"]), int(request["seed"])
    written = 0
    schema = None
    writer = None
    try:
        for frame in _batches(model, rows, seed, request.get("conditions"), int(request["batch_size"])):
            table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False, schema=schema)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(os.path.join(job, "output.parquet"), schema)
            writer.write_table(table)
            written += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return {"output": "output.parquet", "rows": written}


def _sample_set(job: str, request: dict[str, Any], model: Any) -> dict[str, Any]:
    if not hasattr(model, "_table_synthesizers"):
        raise RunnerError("not_a_table_set", "The file does not hold an SDV multi-table synthesizer.")
    tables = sample_entity_set(
        model, str(request["entity_table"]), int(request["rows"]), int(request["seed"])
    )
    with open(os.path.join(job, "output.zip"), "r+b") as handle:
        write_table_set(tables, handle)
    return {"output": "output.zip", "tables": {name: len(frame) for name, frame in tables.items()}}


def _embedded_frames(root: Any, columns: list[str]) -> tuple[int, list[Any]]:
    """Walk the model's object graph (instances, containers; not modules, classes or functions) for tables."""
    import types

    import numpy as np
    import pandas as pd

    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    seen: set[int] = set()
    stack = [root]
    frames: list[Any] = []
    while stack and len(seen) < SCAN_OBJECT_LIMIT:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (*skip, str, bytes, int, float)):
            continue
        seen.add(id(item))
        if isinstance(item, pd.DataFrame):
            frames.append(item)
        elif isinstance(item, np.ndarray):
            if item.ndim == 2 and item.shape[1] == len(columns):
                frames.append(pd.DataFrame(item, columns=columns))
        elif not isinstance(item, pd.Series):
            stack.extend(_held_objects(item))
    return len(seen), frames


def _held_objects(item: Any) -> list[Any]:
    """The objects ``item`` holds: a dict's values, a list's, tuple's or set's members, otherwise the instance's
    attributes (``__dict__``) then its slots."""
    if isinstance(item, dict):
        return list(item.values())
    if isinstance(item, list | tuple | set | frozenset):
        return list(item)
    held: list[Any] = []
    state = getattr(item, "__dict__", None)
    if isinstance(state, dict):
        held.extend(state.values())
    for slot in getattr(type(item), "__slots__", ()) or ():
        if isinstance(slot, str) and hasattr(item, slot):
            held.append(getattr(item, slot))
    return held


def _inspect(job: str, request: dict[str, Any], model: Any) -> dict[str, Any]:
    columns = list(request["columns"])
    with open(os.path.join(job, request["reference_hashes"]), encoding="ascii") as handle:
        reference = {line.strip() for line in handle if line.strip()}
    objects, frames = _embedded_frames(model, columns)
    scanned = matched = 0
    for frame in frames:
        if not set(columns) <= set(map(str, frame.columns)):
            continue
        frame = frame.rename(columns=str)
        hashes = row_hashes(frame, columns)
        scanned += len(hashes)
        matched += sum(1 for value in hashes if value in reference)
    metadata: dict[str, Any] = {}
    describe = getattr(getattr(model, "metadata", None), "to_dict", None)
    if callable(describe):
        metadata = describe()
    return {
        "model": {"class": f"{type(model).__module__}.{type(model).__qualname__}", "metadata": metadata},
        "scan": {"objects": objects, "frames": len(frames), "rows_scanned": scanned, "matched_rows": matched},
    }


def main(job: str) -> int:
    started_pid = os.getpid()
    response: dict[str, Any] = {"protocol": PROTOCOL}
    try:
        with open(os.path.join(job, "request.json"), encoding="utf-8") as handle:
            request = json.load(handle)
        if request.get("protocol") != PROTOCOL:
            raise RunnerError("bad_request", f"Unknown protocol {request.get('protocol')!r}.")
        action = request.get("action")
        if action == "ping":
            response.update(ok=True)
        elif action in ("sample", "inspect", "sample_set"):
            began = time.perf_counter()
            model = _load(os.path.join(job, request["model"]))
            loaded = time.perf_counter()
            work = {"sample": _sample, "inspect": _inspect, "sample_set": _sample_set}[action]
            result = work(job, request, model)
            response.update(ok=True, **result)
            response["seconds"] = {"load": loaded - began, "work": time.perf_counter() - loaded}
        else:
            raise RunnerError("bad_request", f"Unknown action {action!r}.")
    except RunnerError as error:
        response.update(ok=False, error={"code": error.code, "message": error.message})
    except BaseException as error:  # noqa: BLE001 - whatever the model raised is reported, not re-raised
        if os.getpid() != started_pid:
            os._exit(1)  # a child forked by the model: only the runner itself answers
        last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
        where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
        response.update(
            ok=False,
            error={"code": "model_error", "message": f"{type(error).__name__}: {error}"[:500] + where},
        )
    if os.getpid() != started_pid:
        os._exit(1)
    with open(os.path.join(job, "response.json"), "w", encoding="utf-8") as handle:
        json.dump(response, handle)
    return 0 if response.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
