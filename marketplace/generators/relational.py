"""Platform-fitted HMA generators for sets of related tables (issue 20): create, fit and certify, draw.

Guarantees, as for single-table platform fits (``services``):
- The provider's tables are checked as a set (keys, orphans, cycles) and against what HMA can model before
  anything is stored; a refusal is a ``GeneratorError`` (400) naming table and problem, and leaves nothing.
- A random 20 % of the **entities** (entity-table rows, each with every row below it; seed recorded) is held
  out for the privacy test; train and holdout tables are stored privately, one file per table.
- The fit reports its progress on the job (HMA's own stages), the evaluation set it samples is stored as the
  version's synthetic tables, and the certificate (``evaluate_relational``) names every table and the model
  file by SHA-256.
- A draw makes whole entity sets: its ``rows`` count entity rows (that is what the quota counts), the set is
  sampled from the stored model inside the sandbox and leaves it only as a table-set zip that passed
  ``hma.read_checked_set``; ``services.draws.run_draw`` claims, stores and commits it, so quota is consumed
  only when the draw succeeds, as for single-table draws.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from marketplace.accounts.models import User
from marketplace.catalog import ingest
from marketplace.catalog.ingest import IngestError
from marketplace.catalog.models import FileRole, Product, VersionFile
from marketplace.catalog.relational import detect_metadata, is_relational_metadata
from marketplace.catalog.services import ingest_error_status, inspect_table
from marketplace.catalog.summary import refresh_product_summary
from marketplace.catalog.uploads import HashedFile
from marketplace.certification import services as certification
from marketplace.certification.models import Certificate, Job
from marketplace.core.storage import StoredFileChanged
from marketplace.generators import engines, storage
from marketplace.generators.errors import GeneratorError
from marketplace.generators.models import GeneratorModel, SampleDraw, Synthesizer
from marketplace.generators.sandbox import SandboxRefused, job_folder, open_output, run_in_sandbox
from marketplace.generators.schema import OutputInvalid
from marketplace.generators.services.draws import SampledFile, rows_with_spares, sandbox_limits
from marketplace.generators.services.jobs import CertifiedArtifact
from marketplace.generators.services.setup import (
    check_generator_product,
    check_quotas,
    new_generator_version,
    queue_fit,
    store_table,
)

if TYPE_CHECKING:
    import pandas as pd

    from marketplace.generators import hma

logger = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.2
MIN_ENTITIES = 50
MAX_EVALUATION_ENTITIES = 100_000
MAX_ENTITIES_PER_DRAW = 200_000
# Fit progress: the fit takes 5–60 %, sampling the evaluation set 60–65 %, certification 65–95 %.
FIT_SPAN = (5, 60)
CERTIFY_SPAN = (65, 95)
_CERTIFICATE_CORE = ("quality", "plausibility", "privacy", "parameters", "engine")


def is_hma(generator: GeneratorModel) -> bool:
    return generator.synthesizer == Synthesizer.HMA


def entity_table_of(generator: GeneratorModel) -> str:
    """The table whose rows a draw (and the quota) counts."""
    return str(generator.parameters["entity_table"])


# -- creating -------------------------------------------------------------------------------------------------


def _table_name(filename: str) -> str:
    """The table a file holds, from its name (``persons.csv`` → ``persons``), as catalog uploads name it."""
    stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return slugify(stem).replace("-", "_")[:100] or "table"


def _read_tables(uploads: Sequence[HashedFile]) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    for upload in uploads:
        name = _table_name(upload.name or "")
        if name in tables:
            raise GeneratorError(
                "duplicate_table_name", f"Two files are both the table {name!r}; rename one."
            )
        path = upload.temporary_file_path()
        try:
            fmt, _ = inspect_table(path, upload.name or "", upload.size or 0)
        except IngestError as error:
            raise GeneratorError(
                error.code, f"{upload.name}: {error.message}", ingest_error_status(error.code)
            ) from None
        tables[name] = ingest.read_table(path, fmt)
    return tables


def _plan(tables: dict[str, pd.DataFrame], metadata: dict | None) -> tuple[dict, hma.HmaPlan]:
    from marketplace.certification.engine.relational_schema import RelationalError
    from marketplace.generators import hma  # lazy: SDV and the engine stay out of web processes

    if metadata is not None and not is_relational_metadata(metadata):
        raise GeneratorError(
            "bad_metadata", "The metadata needs a 'tables' mapping (SDV multi-table metadata)."
        )
    chosen = metadata if metadata is not None else detect_metadata(tables)
    try:
        plan = hma.plan_fit(tables, chosen)
    except RelationalError as error:
        raise GeneratorError(error.code, str(error), extra={"problems": error.problems}) from None
    except hma.HmaRefused as error:
        raise GeneratorError(error.code, error.message) from None
    entities = len(tables[plan.entity_table])
    if entities < MIN_ENTITIES:
        raise GeneratorError(
            "too_few_rows",
            f"Fitting needs at least {MIN_ENTITIES} rows in the entity table {plan.entity_table!r}; "
            f"it has {entities}.",
        )
    return chosen, plan


def create_hma_generator(
    product: Product,
    *,
    user: User,
    tables: Sequence[HashedFile],
    metadata: dict | None = None,
    row_quotas: Mapping[str, Any] | None = None,
) -> GeneratorModel:
    """Split the provider's related tables by entity (20 % held out, seed recorded), store both sets
    privately and queue the HMA fit. ``tables``: one file per table (the file name is the table name);
    ``metadata``: SDV multi-table metadata, detected when absent; ``row_quotas`` count entity rows.
    All-or-nothing: on a refusal nothing is stored."""
    import secrets

    from marketplace.certification.engine.relational_schema import split_by_entity

    check_generator_product(product, user)
    try:
        engines.ensure_hosted(Synthesizer.HMA)
    except engines.EngineNotAllowed as error:
        raise GeneratorError(error.code, error.message, 403) from None
    if len(tables) < 2:
        raise GeneratorError("too_few_tables", "HMA fits a set of at least two related tables.")
    quotas = check_quotas(row_quotas)
    try:
        frames = _read_tables(tables)
    finally:
        for upload in tables:
            upload.close()
    chosen, plan = _plan(frames, metadata)
    seed = secrets.randbelow(2**31)
    train, holdout = split_by_entity(
        frames, chosen, holdout_share=HOLDOUT_FRACTION, seed=seed, entity=plan.entity_table
    )
    with tempfile.TemporaryDirectory(prefix="synthex-hma-") as folder, transaction.atomic():
        version = new_generator_version(product, user, sdv_metadata=chosen)
        for role, tables_of_role in ((FileRole.TRAIN, train), (FileRole.HOLDOUT, holdout)):
            for name, frame in tables_of_role.items():
                store_table(version, role, frame, Path(folder), table_name=name, original=f"{name}.parquet")
        generator = GeneratorModel.objects.create(
            version=version,
            kind=GeneratorModel.Kind.FITTED,
            synthesizer=Synthesizer.HMA,
            sdv_metadata=chosen,
            parameters={"entity_table": plan.entity_table},
            holdout_seed=seed,
            holdout_fraction=HOLDOUT_FRACTION,
            training_rows=len(train[plan.entity_table]),
            holdout_rows=len(holdout[plan.entity_table]),
            row_quotas=quotas,
        )
        queue_fit(version)
        refresh_product_summary(product)
    return generator


# -- the fit job ----------------------------------------------------------------------------------------------


def is_hma_job(job: Job) -> bool:
    return GeneratorModel.objects.filter(version_id=job.version_id, synthesizer=Synthesizer.HMA).exists()


def _job_progress(job: Job) -> Callable[[str, int], None]:
    """Write (stage, overall percent) on the job when the stage changes or the percent moved by 2."""
    last = ["", -100]

    def write(stage: str, percent: int) -> None:
        percent = max(0, min(100, percent))
        if stage != last[0] or percent - cast(int, last[1]) >= 2:
            Job.objects.filter(pk=job.pk).update(stage=stage[:40], progress=percent)
            last[0], last[1] = stage, percent

    return write


def _within(
    progress: Callable[[str, int], None], span: tuple[int, int], prefix: str = ""
) -> Callable[[str, int], None]:
    low, high = span
    return lambda stage, percent: progress(f"{prefix}{stage}", low + (high - low) * percent // 100)


def run_hma_job(job: Job) -> GeneratorModel:
    """Fit the job's HMA generator on its train set, store the model and an evaluation set as the version's
    synthetic tables, and certify the set against the holdout; the generator is then ready."""
    from marketplace.catalog.relational import load_sets
    from marketplace.generators import hma  # lazy: SDV and the engine stay out of web processes

    generator = GeneratorModel.objects.select_related("version__product").get(version=job.version)
    version = generator.version
    if Certificate.objects.filter(version=version, engine_version=certification.ENGINE_VERSION).exists():
        return _mark_ready(generator)
    # An earlier attempt's evaluation set came from that attempt's model, not from the one made now.
    version.files.filter(role=FileRole.SYNTHETIC).delete()
    progress = _job_progress(job)
    progress("loading", 2)
    with tempfile.TemporaryDirectory(prefix="synthex-hma-") as folder:
        try:
            sets = load_sets(version, folder)
        except StoredFileChanged:
            raise GeneratorError(
                "integrity",
                "A stored reference table no longer matches its recorded SHA-256; it was not used.",
            ) from None
        if FileRole.TRAIN not in sets:
            raise GeneratorError(
                "no_reference", "The reference train tables were deleted; the generator cannot be fitted."
            )
        train, holdout = sets[FileRole.TRAIN], sets.get(FileRole.HOLDOUT)
        try:
            model = hma.fit_hma(
                train,
                generator.sdv_metadata,
                seed=generator.holdout_seed or 0,
                progress=_within(progress, FIT_SPAN),
            )
        except hma.HmaRefused as error:
            raise GeneratorError(error.code, error.message) from error
        _store_model(generator, model, Path(folder))
        progress("sampling the evaluation set", FIT_SPAN[1])
        entity = entity_table_of(generator)
        evaluation = hma.sample_entities(
            model,
            entity=entity,
            rows=min(len(train[entity]), MAX_EVALUATION_ENTITIES),
            seed=(generator.holdout_seed or 0) + 1,
        )
        synthetic = [
            store_table(
                version, FileRole.SYNTHETIC, frame, Path(folder), table_name=name, original=f"{name}.parquet"
            )
            for name, frame in sorted(evaluation.items())
        ]
        _certify(generator, synthetic, evaluation, train, holdout, progress)
    return _mark_ready(generator)


def _store_model(generator: GeneratorModel, model: Any, folder: Path) -> None:
    path = folder / "model.pkl"
    model.save(str(path))
    sha = storage.sha256_file(path)
    name = storage.save_once(
        "reference", storage.model_name(generator.version.product.organization_id, sha, "pkl"), path
    )
    GeneratorModel.objects.filter(pk=generator.pk).update(
        storage_name=name, sha256=sha, size_bytes=path.stat().st_size
    )
    generator.refresh_from_db()


def _certify(
    generator: GeneratorModel,
    synthetic: list[VersionFile],
    evaluation: dict[str, pd.DataFrame],
    train: dict[str, pd.DataFrame],
    holdout: dict[str, pd.DataFrame] | None,
    progress: Callable[[str, int], None],
) -> None:
    from marketplace.certification.engine import EngineConfig, EngineError
    from marketplace.certification.engine.relational import evaluate_relational

    version = generator.version
    try:
        result = evaluate_relational(
            evaluation,
            train,
            holdout,
            generator.sdv_metadata,
            config=EngineConfig(seed=version.pk),
            progress=_within(progress, CERTIFY_SPAN, "certifying: "),
        ).to_dict()
    except EngineError as error:
        raise GeneratorError("certification_failed", str(error)) from error
    progress("signing", 96)
    model = CertifiedArtifact(
        table_name="generator.hma",
        sha256=generator.sha256,
        rows=0,
        column_count=sum(len(t.get("columns", {})) for t in generator.sdv_metadata["tables"].values()),
    )
    certification.issue_certificate(
        version,
        {key: result[key] for key in _CERTIFICATE_CORE} | {"charts": {}},
        cast(list[VersionFile], [*synthetic, model]),
        extra_sections={"tables": result["tables"], "relational": result["relational"]},
    )


def _mark_ready(generator: GeneratorModel) -> GeneratorModel:
    GeneratorModel.objects.filter(pk=generator.pk).update(
        status=GeneratorModel.Status.READY, ready_at=timezone.now()
    )
    generator.refresh_from_db()
    return generator


# -- drawing entity sets --------------------------------------------------------------------------------------


def check_entity_request(generator: GeneratorModel, rows: Any, conditions: Any) -> None:
    """Refuse (400) what an HMA draw cannot take, before the shared checks: conditions, or more than
    ``MAX_ENTITIES_PER_DRAW`` entity rows (a set holds several rows per entity)."""
    if conditions not in (None, "", {}):
        raise GeneratorError(
            "conditions_not_supported", "Draws from a set of tables take no conditions; ask for rows only."
        )
    if isinstance(rows, int) and not isinstance(rows, bool) and rows > MAX_ENTITIES_PER_DRAW:
        raise GeneratorError(
            "too_many_rows",
            f"One draw makes at most {MAX_ENTITIES_PER_DRAW:,} {entity_table_of(generator)} rows "
            "(each with its children); split the request.",
        )


def draw_set_in_sandbox(generator: GeneratorModel, *, rows: int, seed: int, target: Path) -> dict[str, int]:
    """Sample ``rows`` entity rows with their children from the stored model inside the sandbox and copy
    the checked table-set zip to ``target``; returns rows per table. Raises ``GeneratorError``."""
    from marketplace.generators import hma  # lazy: SDV and the engine stay out of web processes

    limits = sandbox_limits()
    with job_folder() as job:
        storage.fetch("reference", generator.storage_name, job / "model.pkl", generator.sha256)
        request = {"action": "sample_set", "model": "model.pkl", "rows": rows, "seed": seed}
        try:
            run_in_sandbox(job, request | {"entity_table": entity_table_of(generator)}, limits)
            with open_output(job / "output.zip", limits.disk_bytes) as output:
                tables = hma.read_checked_set(
                    output, generator.sdv_metadata, entity=entity_table_of(generator), rows=rows
                )
                output.seek(0)
                storage.copy_hashed(output, target)
        except SandboxRefused as error:
            raise GeneratorError(error.code, error.message) from None
        except OutputInvalid as error:
            raise GeneratorError(error.code, error.message) from None
    return {name: len(frame) for name, frame in tables.items()}


def draw_entity_set(draw: SampleDraw, folder: Path) -> SampledFile:
    """Make ``draw``'s entity set as a table-set zip in ``folder``, with spare entities
    (``rows_with_spares``) so a buyer's fingerprinted copy, which leaves out a keyed few entities, still holds
    every one asked for; ``services.draws.run_draw`` stores and commits it as it does single-table draws."""
    path = folder / "set.zip"
    draw_set_in_sandbox(draw.generator, rows=rows_with_spares(draw.rows), seed=draw.seed, target=path)
    return SampledFile(
        path=path, rows=draw.rows, sha256=storage.sha256_file(path), size_bytes=path.stat().st_size
    )


def describe_tables(generator: GeneratorModel) -> dict[str, Any]:
    """The public schema of an HMA generator: tables with their columns, relationships, the entity table."""
    if not is_hma(generator):
        return {}
    metadata = generator.sdv_metadata
    return {
        "tables": {name: list(spec.get("columns", {})) for name, spec in metadata.get("tables", {}).items()},
        "relationships": metadata.get("relationships", []),
        "entity_table": entity_table_of(generator),
        "quota_counts": f"rows of {entity_table_of(generator)} (each with its children)",
    }
