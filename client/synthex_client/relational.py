"""``synthex upload`` of a set of related tables (issue 20).

Two ways to name a set:
- a folder: ``synthex upload PRODUCT SET/`` where ``SET/synthetic/``, ``SET/train/`` and optionally
  ``SET/holdout/`` hold one file per table (the file name is the table name), and ``SET/metadata.json``
  optionally holds SDV multi-table metadata;
- files: ``synthex upload PRODUCT a.csv b.csv --train TRAIN_DIR [--holdout HOLDOUT_DIR]
  [--metadata @metadata.json]`` (train/holdout folders with the same file names).
Without metadata the server detects it (SDV) and the provider confirms or corrects it before submitting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json", ".csv.gz")


def _tables(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(TABLE_SUFFIXES))


def _metadata(value: str | None, folder: Path | None) -> dict[str, Any] | None:
    text = None
    if value and value.startswith("@"):
        text = Path(value[1:]).expanduser().read_text()
    elif value:
        text = value
    elif folder is not None and (folder / "metadata.json").is_file():
        text = (folder / "metadata.json").read_text()
    if text is None:
        return None
    loaded = json.loads(text)
    return loaded if isinstance(loaded, dict) else None


def relational_paths(arguments: Any) -> dict[str, Any] | None:
    """The set named on the command line ({synthetic, train, holdout: [paths], metadata}), or None when the
    command names a single table (the ordinary upload). Raises ValueError for an unusable folder."""
    files = [Path(name).expanduser() for name in arguments.files]
    folder = files[0] if len(files) == 1 and files[0].is_dir() else None
    train = Path(arguments.train).expanduser() if arguments.train else None
    holdout = Path(arguments.holdout).expanduser() if arguments.holdout else None
    try:
        metadata = _metadata(arguments.metadata, folder)
    except (OSError, ValueError) as error:
        raise ValueError(f"--metadata: {error}") from None
    multi_table = isinstance(metadata, dict) and isinstance(metadata.get("tables"), dict)
    if folder is None and not (train and train.is_dir()) and not multi_table:
        return None
    if folder is not None:
        synthetic = _tables(folder / "synthetic") if (folder / "synthetic").is_dir() else []
        train = train or folder / "train"
        holdout = holdout or (folder / "holdout" if (folder / "holdout").is_dir() else None)
    else:
        synthetic = files
    if not synthetic:
        raise ValueError(
            "the set has no synthetic tables (a folder needs synthetic/ with one file per table)"
        )
    if train is None or not train.is_dir():
        raise ValueError(
            "the real train tables must be a folder (--train DIR, or train/ in the set's folder)"
        )
    return {
        "synthetic": synthetic,
        "train": _tables(train),
        "holdout": _tables(holdout) if holdout and holdout.is_dir() else [],
        "metadata": metadata,
    }


def create_set_version(
    api: Any, slug: str, ids: dict[str, list[str]], metadata: dict | None, changelog: str | None, submit: bool
) -> dict[str, Any]:
    """Make a relational version from completed upload sessions (ids per role)."""
    body: dict[str, Any] = {"synthetic": ids["synthetic"], "train": ids["train"], "submit": submit}
    if ids["holdout"]:
        body["holdout"] = ids["holdout"]
    if metadata:
        body["metadata"] = metadata
    if changelog:
        body["changelog"] = changelog
    return api.call("POST", f"products/{slug}/versions/", json=body, timeout=600)


def cmd_upload_set(context: Any, paths: dict[str, Any]) -> int:
    """Upload every table of the set (resumable chunks), wait for the server's checks, make the version."""
    from synthex_client import uploads
    from synthex_client.cli import common, versions

    arguments = context.arguments
    state = uploads.UploadState()
    ids: dict[str, list[str]] = {"synthetic": [], "train": [], "holdout": []}
    results = []
    with context.api(need_token=True) as api:
        versions.check_product_exists(api, arguments.product)
    with context.api(need_token=True) as api, common.transfer_progress(context) as progress:
        for role in ("synthetic", "train", "holdout"):
            for path in paths[role]:
                task = progress.add_task(f"{role}/{path.name}", total=path.stat().st_size)

                def started(total: int, already: int, task: Any = task) -> None:
                    progress.update(task, total=total, completed=already)

                def advanced(count: int, task: Any = task) -> None:
                    progress.advance(task, count)

                result = uploads.upload_file(
                    api,
                    path,
                    state=state,
                    chunk_size=arguments.chunk_size,
                    on_start=started,
                    on_progress=advanced,
                    product=arguments.product,
                )
                uploads.wait_until_checked(api, result.upload_id, lambda percent: None)
                ids[role].append(result.upload_id)
                results.append((role, result))
        version = create_set_version(
            api, arguments.product, ids, paths["metadata"], arguments.changelog, not arguments.no_submit
        )
        uploads.forget_attached(state, [r for _, r in results], api.base_url)
    files = [{"role": role, "path": r.path, "sha256": r.sha256, "size": r.size} for role, r in results]
    lines = [
        f"{item['role']} {item['path']}: {item['size']:,} bytes, sha256 {item['sha256']}" for item in files
    ]
    return versions.report_new_version(context, version, files, lines)


def fit_table_paths(names: list[str], metadata: str | None) -> tuple[list[Path], dict[str, Any] | None]:
    """The real tables to fit HMA on (files, or every table file of one folder) and the metadata given with
    ``--metadata`` or found as ``metadata.json`` in that folder. Raises ValueError for unusable paths."""
    paths = [Path(name).expanduser() for name in names]
    folder = paths[0] if len(paths) == 1 and paths[0].is_dir() else None
    tables = [p for p in _tables(folder) if p.name != "metadata.json"] if folder is not None else paths
    missing = [str(path) for path in tables if not path.is_file()]
    if missing:
        raise ValueError(f"no such file: {', '.join(missing)}")
    if len(tables) < 2:
        raise ValueError("HMA fits a set of at least two related tables (one file per table)")
    try:
        return tables, _metadata(metadata, folder)
    except (OSError, ValueError) as error:
        raise ValueError(f"--metadata: {error}") from None


def cmd_fit_tables(context: Any) -> int:
    """Send the real tables to fit SDV's HMA on (``POST products/{slug}/generator/tables/``); with
    ``--watch``, follow the fit and certification job's progress."""
    from synthex_client.cli import common, versions

    arguments = context.arguments
    try:
        tables, metadata = fit_table_paths(arguments.files, arguments.metadata)
    except ValueError as error:
        raise common.UsageError(str(error)) from None
    data: dict[str, str] = {}
    if metadata:
        data["metadata"] = json.dumps(metadata)
    if arguments.row_quotas:
        data["row_quotas"] = arguments.row_quotas
    with context.api(need_token=True) as api:
        versions.check_product_exists(api, arguments.product)
        handles = [path.open("rb") for path in tables]
        try:
            files = [("tables", (path.name, handle)) for path, handle in zip(tables, handles, strict=True)]
            generator = api.call(
                "POST", f"products/{arguments.product}/generator/tables/", data=data, files=files, timeout=600
            )
        finally:
            for handle in handles:
                handle.close()
    job = (generator.get("job") or {}).get("id")

    def human() -> None:
        context.out.print(
            f"HMA generator for version {generator['version']} of {arguments.product}: tables "
            f"{', '.join(generator.get('tables', {}))}; draws count rows of {generator.get('entity_table')}"
        )
        if job:
            context.out.print(f"Fit job {job}: follow it with `synthex jobs watch {job}`")

    context.emit({"generator": generator, "job": job}, human)
    if job and arguments.watch:
        arguments.job_id = job
        return versions.cmd_jobs_watch(context)
    return common.EXIT_OK
