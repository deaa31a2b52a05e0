"""Rows for buyers: a request checked against the quota and queued, the draw made in the sandbox (or by the
native engines) and committed with the caller's hook, and the sweep of draws whose worker died.

A draw consumes quota only when it succeeds: its row is marked succeeded and the caller's commit hook
(which records the ledger event) run in one transaction; a failed draw is marked failed and consumes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from marketplace.accounts.models import User
from marketplace.core import leases
from marketplace.generators import engines, selectors, storage
from marketplace.generators.errors import GeneratorError
from marketplace.generators.models import GeneratorModel, SampleDraw, Synthesizer
from marketplace.generators.sandbox import (
    SandboxLimits,
    SandboxRefused,
    job_folder,
    open_output,
    run_in_sandbox,
)
from marketplace.generators.schema import DeclaredSchema, OutputInvalid, check_output

logger = logging.getLogger(__name__)

MAX_ROWS_PER_DRAW = 5_000_000
SAMPLE_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class SampledFile:
    """Rows drawn into a local Parquet file: its path, row count, SHA-256 (hex) and size in bytes."""

    path: Path
    rows: int
    sha256: str
    size_bytes: int


def sandbox_limits() -> SandboxLimits:
    """The sandbox limits of this deployment (settings ``SYNTHEX_SANDBOX_*``)."""
    return SandboxLimits(
        wall_seconds=float(settings.SYNTHEX_SANDBOX_WALL_SECONDS),
        cpu_seconds=int(settings.SYNTHEX_SANDBOX_CPU_SECONDS),
        address_space_bytes=int(settings.SYNTHEX_SANDBOX_AS_BYTES),
        memory_bytes=int(settings.SYNTHEX_SANDBOX_MEMORY_BYTES),
        file_size_bytes=int(settings.SYNTHEX_SANDBOX_FILE_BYTES),
        disk_bytes=int(settings.SYNTHEX_SANDBOX_DISK_BYTES),
        scratch_bytes=int(settings.SYNTHEX_SANDBOX_SCRATCH_BYTES),
        processes=int(settings.SYNTHEX_SANDBOX_PROCESSES),
    )


def draw_in_sandbox(
    generator: GeneratorModel,
    *,
    rows: int,
    seed: int,
    conditions: Mapping[str, Any] | None,
    folder: Path,
    limits: SandboxLimits | None = None,
) -> SampledFile:
    """Sample ``rows`` rows from the stored generator inside the sandbox into ``folder``; the file returned
    has exactly the declared columns, fitting types and ``rows`` rows. Raises ``GeneratorError``.

    The model's output is read once, through the descriptor ``open_output`` checked (a regular file no
    larger than the disk quota, not a symlink or a FIFO), and copied into ``folder`` while it is hashed.
    """
    if engines.is_native(generator.synthesizer):
        from marketplace.generators import native

        return native.draw(generator, rows=rows, seed=seed, conditions=conditions, folder=folder)
    schema = DeclaredSchema.from_sdv_metadata(generator.sdv_metadata)
    limits = limits or sandbox_limits()
    target = folder / f"sample-{secrets.token_hex(6)}.parquet"
    with job_folder() as job:
        storage.fetch("reference", generator.storage_name, job / "model.pkl", generator.sha256)
        try:
            run_in_sandbox(
                job,
                {
                    "action": "sample",
                    "model": "model.pkl",
                    "rows": rows,
                    "seed": seed,
                    "conditions": dict(conditions or {}) or None,
                    "batch_size": SAMPLE_BATCH_ROWS,
                },
                limits,
            )
            with open_output(job / "output.parquet", limits.disk_bytes) as output:
                check_output(output, schema, rows)
                output.seek(0)
                sha, size = storage.copy_hashed(output, target)
        except SandboxRefused as error:
            raise GeneratorError(error.code, error.message) from None
        except OutputInvalid as error:
            raise GeneratorError(error.code, error.message) from None
    return SampledFile(path=target, rows=rows, sha256=sha, size_bytes=size)


def check_conditions(generator: GeneratorModel, conditions: Any) -> dict[str, Any]:
    """Refuse conditions that name unknown columns or columns that cannot be conditioned, or whose values do
    not fit the column's type or lie outside the generator's published synthetic sample.

    Checked against public facts only: the declared columns and sdtypes, and the evaluation sample's values
    (synthetic rows, shown to buyers). Never the private reference rows: their minima, maxima and categories
    would turn these refusals into an oracle on the private data. Refusals quote only the buyer's own values.
    """
    if conditions in (None, "", {}):
        return {}
    if not isinstance(conditions, dict):
        raise GeneratorError("bad_conditions", "Conditions must map column names to values.")
    columns = generator.sdv_metadata.get("columns", {})
    for name, value in conditions.items():
        _check_condition(columns, name, value)
    sample = selectors.public_sample(generator)
    if sample is None:
        raise GeneratorError(
            "impossible_conditions",
            "This generator has no published sample to check conditions against; draw without conditions.",
        )
    for name, value in conditions.items():
        if not selectors.in_public_sample(sample, name, columns[name]["sdtype"], value):
            raise GeneratorError(
                "impossible_conditions",
                f"{name} = {value!r} lies outside the values of this generator's published sample.",
            )
    return dict(conditions)


def _check_condition(columns: dict[str, Any], name: str, value: Any) -> None:
    """Refuse one condition whose column is unknown or cannot be conditioned, or whose value does not fit it."""
    if name not in columns:
        raise GeneratorError("impossible_conditions", f"There is no column named {name!r}.")
    sdtype = columns[name].get("sdtype")
    if sdtype not in ("categorical", "boolean", "numerical"):
        raise GeneratorError(
            "impossible_conditions", f"Column {name!r} ({sdtype}) cannot be used as a condition."
        )
    if isinstance(value, dict | list) or value is None:
        raise GeneratorError("bad_conditions", f"The condition on {name!r} must be a single value.")
    if sdtype == "numerical" and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        raise GeneratorError("impossible_conditions", f"Column {name!r} is numerical; {value!r} is not.")


def seed_digest(seed: int) -> str:
    return hashlib.sha256(f"synthex.seed/v1:{seed}".encode()).hexdigest()


def sample_rows(
    generator: GeneratorModel,
    *,
    entitlement_id: str,
    buyer: User,
    quota_rows: int,
    rows: Any,
    seed: Any = None,
    conditions: Any = None,
    commit_hook: str,
) -> SampleDraw:
    """Queue a draw of ``rows`` rows for ``buyer`` under an entitlement whose quota is ``quota_rows``.

    The caller holds a lock on the entitlement (so two requests cannot both take the last rows). Refuses,
    changing nothing, when rows is not a whole number in 1..``MAX_ROWS_PER_DRAW``, exceeds the quota left,
    the seed is not a whole number in 0..2**63-1, or the conditions are impossible. ``commit_hook`` is the
    dotted path of a function called with the succeeded draw inside the transaction that marks it so.
    """
    if generator.status != GeneratorModel.Status.READY:
        raise GeneratorError("generator_not_ready", "This generator is not certified and ready yet.", 409)
    engines.ensure_hosted(generator.synthesizer)
    if isinstance(rows, bool) or not isinstance(rows, int):
        raise GeneratorError("bad_rows", "rows must be a whole number.")
    if rows <= 0:
        raise GeneratorError("bad_rows", "rows must be at least 1.")
    if rows > MAX_ROWS_PER_DRAW:
        raise GeneratorError(
            "too_many_rows", f"One draw makes at most {MAX_ROWS_PER_DRAW:,} rows; split the request."
        )
    left = quota_rows - selectors.reserved_rows(entitlement_id)
    if rows > left:
        raise GeneratorError(
            "quota_exceeded", f"This license has {max(left, 0):,} rows left; {rows:,} were requested.", 409
        )
    if seed is None:
        seed = secrets.randbelow(2**62)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise GeneratorError("bad_seed", "seed must be a whole number between 0 and 2**63-1.")
    checked = check_conditions(generator, conditions)
    draw = SampleDraw.objects.create(
        id=f"draw_{secrets.token_hex(12)}",
        generator=generator,
        entitlement_id=entitlement_id,
        buyer=buyer,
        rows=rows,
        seed=seed,
        seed_sha256=seed_digest(seed),
        conditions=checked,
        commit_hook=commit_hook,
    )
    from marketplace.generators.tasks import sample_generator_task

    transaction.on_commit(lambda: sample_generator_task.delay(draw.id))
    return draw


def rows_with_spares(rows: int) -> int:
    """How many rows a draw of ``rows`` makes: a buyer's copy leaves out a keyed few rows (its fingerprint,
    at most 5 %, about 1 % from 4,000 rows: exchange/downloads/fingerprint.py) and is then cut back to
    ``rows``, so the draw makes enough spares that the copy holds every row asked for."""
    return rows + math.ceil(rows * (0.10 if rows < 4000 else 0.02)) + 16


def run_draw(draw_id: str) -> SampleDraw | None:
    """Make a queued draw's rows in the sandbox (an HMA generator's: a table set, made by
    ``relational.draw_entity_set``), store them, and commit (draw succeeded + commit hook) in one
    transaction; on any failure the draw is marked failed and nothing is consumed. None when it is not queued
    and no dead worker's (a stale heartbeat) to take over. Only the attempt that holds the draw commits it.
    """
    now = timezone.now()
    lost = Q(status=SampleDraw.Status.RUNNING, heartbeat_at__lt=leases.stale_before(now))
    claimed = SampleDraw.objects.filter(
        Q(status=SampleDraw.Status.QUEUED) | lost, pk=draw_id, attempts__lt=settings.SYNTHEX_JOB_MAX_ATTEMPTS
    ).update(status=SampleDraw.Status.RUNNING, progress=5, heartbeat_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    draw = SampleDraw.objects.select_related("generator__version").get(pk=draw_id)
    mine = SampleDraw.objects.filter(pk=draw.pk, status=SampleDraw.Status.RUNNING, attempts=draw.attempts)
    stored: str | None = None
    try:
        with (
            leases.heartbeat(lambda: bool(mine.update(heartbeat_at=timezone.now()))),
            tempfile.TemporaryDirectory(prefix="synthex-draw-") as folder,
        ):
            if draw.generator.synthesizer == Synthesizer.HMA:
                from marketplace.generators import relational

                sampled = relational.draw_entity_set(draw, Path(folder))
            else:
                sampled = draw_in_sandbox(
                    draw.generator,
                    rows=rows_with_spares(draw.rows),
                    seed=draw.seed,
                    conditions=draw.conditions,
                    folder=Path(folder),
                )
            stored = storage.save_once("default", f"samples/{draw.id}{sampled.path.suffix}", sampled.path)
        with transaction.atomic():
            won = mine.update(
                status=SampleDraw.Status.SUCCEEDED,
                progress=100,
                storage_name=stored,
                sha256=sampled.sha256,
                size_bytes=sampled.size_bytes,
                finished_at=timezone.now(),
            )
            if won:
                draw.refresh_from_db()
                import_string(draw.commit_hook)(draw)
        if not won:  # another worker took the draw over: its copy is the one delivered
            storages["default"].delete(stored)
    except GeneratorError as error:
        _fail_draw(draw, error.code, error.message, stored)
    except Exception:
        logger.exception("draw %s crashed", draw_id)
        _fail_draw(
            draw, "internal_error", "An internal error stopped this draw; nothing was consumed.", stored
        )
    draw.refresh_from_db()
    return draw


def _fail_draw(draw: SampleDraw, code: str, message: str, stored: str | None) -> None:
    """Fail the attempt ``draw`` (as claimed), deleting what it stored."""
    SampleDraw.objects.filter(pk=draw.pk, attempts=draw.attempts).exclude(
        status=SampleDraw.Status.SUCCEEDED
    ).update(
        status=SampleDraw.Status.FAILED,
        error=message,
        error_code=code,
        storage_name="",
        sha256="",
        size_bytes=None,
        finished_at=timezone.now(),
    )
    if stored:
        storages["default"].delete(stored)


def sweep_draws(*, now: datetime | None = None) -> dict[str, int]:
    """Take care of draws crashed workers left behind: a running draw whose heartbeat is older than the lease
    lost its worker, so it is queued again and re-sent (the claim is a conditional UPDATE, the commit fenced
    by the attempt number: it is delivered once); one that lost its worker ``SYNTHEX_JOB_MAX_ATTEMPTS`` times
    fails and its rows are released (nothing was consumed: the ledger event is written only with success); a
    draw queued for longer than ``leases.RESEND_QUEUED_AFTER_SECONDS`` since it was last sent had its message
    lost, so it is sent again."""
    from marketplace.generators.tasks import sample_generator_task

    moment = now or timezone.now()
    stale = leases.stale_before(moment)
    counts = {"failed": 0, "requeued": 0, "resent": 0}
    lost = SampleDraw.objects.filter(status=SampleDraw.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale)
    )
    for draw in lost:
        if draw.attempts >= settings.SYNTHEX_JOB_MAX_ATTEMPTS:
            logger.warning(
                "draw %s lost its worker %s times; releasing its %s rows", draw.pk, draw.attempts, draw.rows
            )
            _fail_draw(
                draw,
                "worker_lost",
                "The worker making this draw stopped; nothing was consumed. Ask again.",
                None,
            )
            counts["failed"] += 1
        elif SampleDraw.objects.filter(
            pk=draw.pk,
            status=SampleDraw.Status.RUNNING,
            attempts=draw.attempts,
            heartbeat_at=draw.heartbeat_at,
        ).update(status=SampleDraw.Status.QUEUED, progress=0, heartbeat_at=moment):
            logger.warning("draw %s lost its worker at attempt %s; queued again", draw.pk, draw.attempts)
            sample_generator_task.delay(draw.pk)
            counts["requeued"] += 1
    unsent = leases.unsent_before(moment)
    waiting = SampleDraw.objects.filter(status=SampleDraw.Status.QUEUED).filter(
        Q(heartbeat_at__lt=unsent) | Q(heartbeat_at__isnull=True, created_at__lt=unsent)
    )
    for draw in waiting:
        if SampleDraw.objects.filter(
            pk=draw.pk, status=SampleDraw.Status.QUEUED, heartbeat_at=draw.heartbeat_at
        ).update(heartbeat_at=moment):
            sample_generator_task.delay(draw.pk)
            counts["resent"] += 1
    return counts
