"""The fit job of a generator version: fit on the platform (SDV through ``fitting``, the tree engines through
``native``) or check an uploaded synthesizer in the sandbox, store the evaluation sample, and certify it
through certification's service with the generator's own sections (DP statement, shadow attack) added.

The certificate covers the generator file (its SHA-256) and the evaluation sample. A job attempt after a
lost worker keeps a model an earlier attempt certified, and otherwise starts from a fresh evaluation sample.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.utils import timezone

from marketplace.catalog import ingest
from marketplace.catalog.models import FileRole, ProductVersion, VersionFile
from marketplace.certification import services as certification
from marketplace.certification.models import Certificate, Job
from marketplace.certification.progress import progress_writer
from marketplace.generators import engines, fitting, storage
from marketplace.generators.errors import GeneratorError
from marketplace.generators.models import GeneratorModel
from marketplace.generators.runner import row_hashes
from marketplace.generators.sandbox import SandboxLimits, SandboxRefused, job_folder, run_in_sandbox
from marketplace.generators.schema import DeclaredSchema
from marketplace.generators.services.draws import draw_in_sandbox, sandbox_limits
from marketplace.generators.services.setup import store_table

if TYPE_CHECKING:
    import pandas as pd

MAX_EVALUATION_ROWS = 100_000
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class CertifiedArtifact:
    """What the certificate names besides tables: the generator file (``rows`` is 0 for a model)."""

    table_name: str
    sha256: str
    rows: int
    column_count: int


def _reference(version: ProductVersion, folder: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    files = {f.role: f for f in version.files.filter(deleted_at__isnull=True)}
    if FileRole.TRAIN not in files:
        raise GeneratorError(
            "no_reference", "The reference train rows were deleted; the generator cannot be checked."
        )
    frames: list[pd.DataFrame | None] = []
    for role in (FileRole.TRAIN, FileRole.HOLDOUT):
        item = files.get(role)
        if item is None:
            frames.append(None)
            continue
        path = storage.fetch(
            item.storage_alias, item.storage_name, folder / f"{role}.{item.format}", item.sha256
        )
        frames.append(ingest.read_table(path, item.format))
    return cast("pd.DataFrame", frames[0]), frames[1]


def run_generator_job(job: Job) -> GeneratorModel:
    """Fit (platform) or check (uploaded) the job's generator, sample its evaluation set, and certify it."""
    generator = GeneratorModel.objects.select_related("version__product__organization").get(
        version=job.version
    )
    if Certificate.objects.filter(version=job.version, engine_version=certification.ENGINE_VERSION).exists():
        # An earlier attempt certified the generator and lost its worker before saying so: the model that
        # attempt stored is the one its certificate names, so it is kept as it is.
        return _mark_ready(generator)
    if job.attempts > 1:
        # An earlier attempt's evaluation sample came from that attempt's model, not from the one made now.
        generator.version.files.filter(role=FileRole.SYNTHETIC).delete()
    # The whole job's 0–100 % (fit 5–60, certification 70–95), written every few percent.
    progress = progress_writer(job, low=0, high=100)
    with tempfile.TemporaryDirectory(prefix="synthex-generator-") as name:
        folder = Path(name)
        train, holdout = _reference(generator.version, folder)
        rows = min(len(train), MAX_EVALUATION_ROWS)
        if generator.kind == GeneratorModel.Kind.FITTED:
            evaluation_frame = fit(generator, train, folder, rows, progress)
        else:
            evaluation_frame = _check_upload(generator, train, folder, rows, progress)
        _certify(generator, evaluation_frame, train, folder, progress)
    return _mark_ready(generator)


def _mark_ready(generator: GeneratorModel) -> GeneratorModel:
    GeneratorModel.objects.filter(pk=generator.pk).update(
        status=GeneratorModel.Status.READY, ready_at=timezone.now()
    )
    generator.refresh_from_db()
    return generator


def fit(
    generator: GeneratorModel, train: pd.DataFrame, folder: Path, rows: int, progress: Progress
) -> pd.DataFrame:
    """Fit the generator on ``train``, store the model privately (named by its SHA-256) and record it on the
    generator; return ``rows`` evaluation rows."""
    from marketplace.generators import native

    if engines.is_native(generator.synthesizer):
        return native.fit_generator(generator, train, folder, rows, progress)
    fitted = fitting.fit_synthesizer(
        generator.synthesizer,
        generator.sdv_metadata,
        generator.parameters,
        list(generator.constraints),
        train=train,
        seed=generator.holdout_seed or 0,
        rows=rows,
        model_path=folder / "model.pkl",
        progress=progress,
    )
    sha = storage.sha256_file(fitted.path)
    name = storage.save_once(
        "reference", storage.model_name(generator.version.product.organization_id, sha, "pkl"), fitted.path
    )
    GeneratorModel.objects.filter(pk=generator.pk).update(
        storage_name=name, sha256=sha, size_bytes=fitted.path.stat().st_size, loss_values=fitted.loss_values
    )
    generator.refresh_from_db()
    return fitted.evaluation


def _check_upload(
    generator: GeneratorModel, train: pd.DataFrame, folder: Path, rows: int, progress: Progress
) -> pd.DataFrame:
    schema = DeclaredSchema.from_sdv_metadata(generator.sdv_metadata)
    progress("scanning the model", 10)
    scan = scan_model(generator, train, limits=sandbox_limits())
    GeneratorModel.objects.filter(pk=generator.pk).update(scan=scan)
    progress("sampling evaluation rows", 40)
    sampled = draw_in_sandbox(generator, rows=rows, seed=generator.pk, conditions=None, folder=folder)
    import pandas as pd

    frame = pd.read_parquet(sampled.path)
    if list(frame.columns) != schema.names:
        raise GeneratorError("wrong_columns", "The model's columns differ from the declared schema.")
    return frame


def scan_model(generator: GeneratorModel, train: pd.DataFrame, *, limits: SandboxLimits) -> dict[str, Any]:
    """Load the generator in the sandbox, look for tables inside it, and refuse it when any of their rows
    equals a reference train row. Returns the scan counts (objects walked, tables, rows scanned, matches).
    """
    columns = DeclaredSchema.from_sdv_metadata(generator.sdv_metadata).names
    with job_folder() as folder:
        storage.fetch("reference", generator.storage_name, folder / "model.pkl", generator.sha256)
        (folder / "reference.hashes").write_text("\n".join(row_hashes(train, columns)), encoding="ascii")
        try:
            outcome = run_in_sandbox(
                folder,
                {
                    "action": "inspect",
                    "model": "model.pkl",
                    "reference_hashes": "reference.hashes",
                    "columns": columns,
                },
                limits,
            )
        except SandboxRefused as error:
            raise GeneratorError(error.code, error.message) from None
    response = outcome.response
    found = response.get("scan")
    scan: dict[str, Any] = found if isinstance(found, dict) else {}
    matched = int(scan.get("matched_rows", 0))
    if matched:
        raise GeneratorError(
            "embedded_training_rows",
            f"The uploaded model carries {matched} rows identical to your reference train rows (SDV "
            "synthesizers can keep the data they were fitted on). Remove them before saving the model "
            "(or fit it here), then upload it again.",
        )
    _check_model_columns(response, columns)
    return {key: int(scan.get(key, 0)) for key in ("objects", "frames", "rows_scanned", "matched_rows")}


def _check_model_columns(response: dict[str, Any], columns: list[str]) -> None:
    """Refuse a model whose own metadata names other columns than the reference data's."""
    model_columns = list(((response.get("model") or {}).get("metadata") or {}).get("tables", {}).values())
    if model_columns:
        declared = list(model_columns[0].get("columns", {}))
        if declared and declared != columns:
            raise GeneratorError(
                "wrong_columns",
                f"The model was fitted on columns {', '.join(declared)}; the reference data has "
                f"{', '.join(columns)}.",
            )


def _certify(
    generator: GeneratorModel,
    evaluation_frame: pd.DataFrame,
    train: pd.DataFrame,
    folder: Path,
    progress: Progress,
) -> None:
    """Store the evaluation sample (once), evaluate the version with certification's service, add the
    generator's sections, and sign the certificate over the sample and the generator file."""
    from marketplace.generators import native, shadow

    version = generator.version
    progress("certifying", 70)
    if not version.files.filter(role=FileRole.SYNTHETIC).exists():
        store_table(
            version,
            FileRole.SYNTHETIC,
            evaluation_frame,
            folder,
            table_name="evaluation_sample",
            original="evaluation_sample.parquet",
        )
    evaluated = certification.evaluate_version(
        version, lambda stage, percent: progress(f"certifying: {stage}", 70 + int(percent * 0.25))
    )
    result = evaluated.evaluation
    native.add_certificate_sections(generator, result)
    result["privacy"] = shadow.with_shadow_attack(
        result["privacy"], shadow.attack_generator(generator, train, progress)
    )
    progress("signing", 96)
    artifact = CertifiedArtifact(
        table_name=f"generator.{generator.synthesizer}",
        sha256=generator.sha256,
        rows=0,
        column_count=len(generator.sdv_metadata.get("columns", {})),
    )
    certification.issue_certificate(
        version,
        result,
        cast(list[VersionFile], [*evaluated.synthetic_files, artifact]),
        sampling=evaluated.sampling,
    )


def fail_generator(job: Job, message: str) -> None:
    """Fail the attempt ``job`` (as claimed) and its generator; nothing when another attempt holds the job."""
    if not Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).exists():
        return
    GeneratorModel.objects.filter(version_id=job.version_id).exclude(
        status=GeneratorModel.Status.READY
    ).update(status=GeneratorModel.Status.FAILED, error=message)
    certification.finish_job(job, error=message)
