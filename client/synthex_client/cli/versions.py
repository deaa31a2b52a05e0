"""A provider's versions: ``synthex upload``, ``rules``, ``submit`` and ``jobs watch``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress

from synthex_client import relational, uploads
from synthex_client.api import ApiError, SynthexClient
from synthex_client.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    JOB_DONE,
    CheckFailed,
    Context,
    UsageError,
    existing_file,
    percent_progress,
    transfer_progress,
)
from synthex_client.cli.products import print_version

NO_REFERENCE = (
    "No reference train rows (--train): certification compares the synthetic tables with the real rows "
    "they imitate, so a version without them cannot be certified."
)


def check_product_exists(api: SynthexClient, slug: str) -> None:
    """Refuse, naming the product, before any byte is sent to a product that is missing or not the user's."""
    try:
        api.product(slug)
    except ApiError as error:
        if error.status != 404:
            raise
        raise ApiError(
            404,
            error.code,
            f"No product {slug!r} you can upload to: `synthex products list` shows the catalog's slugs, "
            "`synthex product create` makes a product.",
            error.body,
        ) from None


def cmd_upload(context: Context) -> int:
    arguments = context.arguments
    try:
        table_set = relational.relational_paths(arguments)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if table_set is not None:
        return relational.cmd_upload_set(context, table_set)
    synthetic, reference, metadata, rules = _upload_inputs(context)
    state = uploads.UploadState()
    with context.api(need_token=True) as api:
        check_product_exists(api, arguments.product)
    with context.api(need_token=True) as api, transfer_progress(context) as progress:
        labelled = [*((str(p), p) for p in synthetic), *((role, p) for role, p in reference.items())]
        results = _send_files(context, api, progress, labelled, state)
        version = api.create_version(
            arguments.product,
            synthetic=[results[str(p)].upload_id for p in synthetic],
            train=results["train"].upload_id if "train" in results else None,
            holdout=results["holdout"].upload_id if "holdout" in results else None,
            target=arguments.target,
            metadata=metadata,
            changelog=arguments.changelog,
            submit=not arguments.no_submit,
            rules=rules,
        )
        uploads.forget_attached(state, list(results.values()), api.base_url)
    files = [
        {
            "path": r.path,
            "upload_id": r.upload_id,
            "sha256": r.sha256,
            "size": r.size,
            "chunks": r.chunks,
            "sent_chunks": r.sent_chunks,
            "resumed_from_chunk": r.resumed_from,
            "seconds": round(r.seconds, 3),
        }
        for r in results.values()
    ]
    lines = [
        f"{item['path']}: {item['size']:,} bytes, sha256 {item['sha256']}"
        + (f", resumed at chunk {item['resumed_from_chunk']}" if item["resumed_from_chunk"] else "")
        for item in files
    ]
    return report_new_version(context, version, files, lines)


def report_new_version(
    context: Context, version: dict[str, Any], files: list[dict[str, Any]], lines: list[str]
) -> int:
    """Report an uploaded version (its ``files``, shown as ``lines``) and its certification job; with
    ``--watch``, follow the job (exit 1 when it fails)."""
    arguments = context.arguments
    job = ((version.get("certification") or {}).get("job") or {}).get("id")

    def human() -> None:
        for line in lines:
            context.out.print(line)
        context.out.print(f"Version {version['number']} of {arguments.product}: {version['status']}")
        if job:
            context.out.print(f"Certification job {job}: follow it with `synthex jobs watch {job}`")

    context.emit({"version": version, "files": files, "job": job}, human)
    if job and arguments.watch:
        arguments.job_id = job
        return cmd_jobs_watch(context)
    return EXIT_OK


def _upload_inputs(context: Context) -> tuple[list[Path], dict[str, Path], Any, dict[str, Any] | None]:
    """The upload's local inputs, read and checked before anything is sent: the synthetic files, the
    reference files by role, the ``--metadata`` corrections and the ``--rules`` choices."""
    arguments = context.arguments
    synthetic = [existing_file(name) for name in arguments.files]
    reference = {
        role: existing_file(getattr(arguments, role))
        for role in ("train", "holdout")
        if getattr(arguments, role)
    }
    metadata = None
    if arguments.metadata:
        try:
            metadata = json.loads(arguments.metadata)
        except ValueError:
            raise UsageError("--metadata must be a JSON object mapping columns to SDV sdtypes.") from None
    rules = _rule_choices(arguments.rules)
    if "train" not in reference:
        if not arguments.no_submit:
            raise UsageError(NO_REFERENCE + " Add --train (and --holdout), or --no-submit to keep a draft.")
        context.err.print(f"warning: {NO_REFERENCE} This draft cannot be submitted.", style="yellow")
    return synthetic, reference, metadata, rules


def _send_files(
    context: Context,
    api: SynthexClient,
    progress: Progress,
    labelled: list[tuple[str, Path]],
    state: uploads.UploadState,
) -> dict[str, uploads.UploadResult]:
    """Upload each (label, path) with a progress bar, then wait until the server has checked every one; the
    uploads by label."""
    results: dict[str, uploads.UploadResult] = {}
    for label, path in labelled:
        task = progress.add_task(path.name, total=path.stat().st_size)

        def started(total: int, already: int, task: Any = task) -> None:
            progress.update(task, total=total, completed=already)

        def advanced(count: int, task: Any = task) -> None:
            progress.advance(task, count)

        results[label] = uploads.upload_file(
            api,
            path,
            state=state,
            chunk_size=context.arguments.chunk_size,
            on_start=started,
            on_progress=advanced,
            product=context.arguments.product,
        )
    # The server validates each file in a worker (parse, schema, statistics) before it can be attached;
    # attaching a refused one fails with the server's reason.
    for result in results.values():
        task = progress.add_task(f"checking {Path(result.path).name}", total=result.size)

        def checked(percent: int, task: Any = task, size: int = result.size) -> None:
            progress.update(task, completed=size * percent // 100)

        uploads.wait_until_checked(api, result.upload_id, checked)
    return results


def _rule_choices(value: str | None) -> dict[str, Any] | None:
    """``--rules``: a JSON object, or @FILE holding one: {"dismissed": [{"id", "reason"}], "declared": [...]}."""
    if not value:
        return None
    text = existing_file(value[1:]).read_text() if value.startswith("@") else value
    try:
        rules = json.loads(text)
    except ValueError:
        raise UsageError(
            '--rules must be JSON: {"dismissed": [{"id": ..., "reason": ...}], "declared": [...]}'
        ) from None
    if not isinstance(rules, dict):
        raise UsageError('--rules must be a JSON object with "dismissed" and/or "declared".')
    return rules


def cmd_rules(context: Context) -> int:
    arguments = context.arguments
    with context.api(need_token=True) as api:
        found = api.version_rules(arguments.product, arguments.version)
    dismissed = {item["id"]: item["reason"] for item in (found.get("choices") or {}).get("dismissed", [])}
    refused = {item["id"]: item["reason"] for item in found["sdv"]["not_enforced"]}

    def human() -> None:
        if not found["rules"]:
            context.out.print("No rule found on the reference rows.")
        for rule in found["rules"]:
            note = f"  [dismissed: {dismissed[rule['id']]}]" if rule["id"] in dismissed else ""
            context.out.print(
                f"{rule['statement']} — broken in {rule['holdout_violation_rate']:.0%} of real rows "
                f"({rule['support']:,} rows){note}"
            )
            context.out.print(
                f"  id {rule['id']}"
                + (f"; no SDV constraint: {refused[rule['id']]}" if rule["id"] in refused else "")
            )

    context.emit(found, human)
    return EXIT_OK


def cmd_submit(context: Context) -> int:
    arguments = context.arguments
    with context.api(need_token=True) as api:
        version = api.submit_version(
            arguments.product,
            arguments.version,
            rules=_rule_choices(arguments.rules),
            target=arguments.target,
        )
    context.emit(version, lambda: print_version(context, version))
    return EXIT_OK


# --- jobs ----------------------------------------------------------------------------------------------


def cmd_jobs_watch(context: Context) -> int:
    arguments = context.arguments
    deadline = time.monotonic() + arguments.timeout if arguments.timeout else None
    with context.api(need_token=True) as api:
        job = api.job(arguments.job_id)  # a refusal is reported before any progress bar is drawn
        with percent_progress(context) as progress:
            task = progress.add_task(job["stage"], total=100, completed=job["progress"])
            while job["status"] not in JOB_DONE:
                if deadline is not None and time.monotonic() > deadline:
                    raise CheckFailed(
                        f"Job {job['id']} is still {job['status']} ({job['stage']}, {job['progress']}%) "
                        f"after {arguments.timeout:g} s."
                    )
                time.sleep(arguments.interval)
                job = api.job(arguments.job_id)
                progress.update(task, completed=job["progress"], description=job["stage"])
        certificate = None
        if job["status"] == "succeeded":
            version = api.version(job["product"], job["version"])
            certificate = ((version.get("certification") or {}).get("certificate") or {}).get("id")

    def human() -> None:
        if job["status"] == "succeeded":
            context.out.print(f"Job {job['id']} succeeded: version {job['version']} of {job['product']}.")
            if certificate:
                context.out.print(f"Certificate {certificate}: `synthex certificate get {certificate}`")
        else:
            context.err.print(f"Job {job['id']} failed: {job['error'] or job['stage']}", style="red")

    context.emit({**job, "certificate": certificate}, human)
    return EXIT_OK if job["status"] == "succeeded" else EXIT_FAILED
