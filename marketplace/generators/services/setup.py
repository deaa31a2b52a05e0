"""Creating generators: a platform fit of the provider's real rows, or an SDV synthesizer uploaded with its
reference rows. Each becomes the product's next version (through catalog's service), submitted at once,
with its fit job queued after the transaction commits. All-or-nothing: on a refusal nothing is stored."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.core.files import File
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from marketplace.accounts.models import User
from marketplace.catalog import ingest
from marketplace.catalog.ingest import IngestError, apply_metadata_overrides, sniff_format
from marketplace.catalog.licenses import LICENSES
from marketplace.catalog.models import (
    FileRole,
    Product,
    ProductKind,
    ProductVersion,
    VersionFile,
    VersionStatus,
)
from marketplace.catalog.services import (
    add_table_file,
    create_next_version,
    ensure_can_manage,
    refresh_product_summary,
)
from marketplace.catalog.uploads import HashedFile
from marketplace.certification import services as certification
from marketplace.certification.models import Job
from marketplace.core import storage
from marketplace.generators import engines, fitting
from marketplace.generators.errors import GeneratorError
from marketplace.generators.models import GeneratorModel, Synthesizer
from marketplace.generators.selectors import DEFAULT_ROW_QUOTAS
from marketplace.generators.storage import model_name

if TYPE_CHECKING:
    import pandas as pd

HOLDOUT_FRACTION = 0.2
MIN_TRAINING_ROWS = 50


def check_generator_product(product: Product, user: User) -> None:
    """Refuse unless ``user`` may manage ``product`` (403) and it sells generators."""
    ensure_can_manage(user, product)
    if product.kind != ProductKind.GENERATOR:
        raise GeneratorError(
            "not_a_generator_product", "This product sells datasets; create a generator product for models."
        )


def check_quotas(row_quotas: Mapping[str, Any] | None) -> dict[str, int]:
    """The row quota per license code (the defaults when none are given); refuses unknown codes and counts
    that are not whole numbers in 1..10**12."""
    if not row_quotas:
        return dict(DEFAULT_ROW_QUOTAS)
    quotas: dict[str, int] = {}
    for code, rows in row_quotas.items():
        if code not in LICENSES:
            raise GeneratorError("bad_quota", f"Unknown license {code!r} in the row quotas.")
        if isinstance(rows, bool) or not isinstance(rows, int) or not 0 < rows <= 10**12:
            raise GeneratorError("bad_quota", f"The row quota of {code!r} must be a positive whole number.")
        quotas[code] = rows
    return quotas


def read_upload(upload: HashedFile) -> tuple[pd.DataFrame, dict[str, Any], str]:
    """Profile and read an uploaded table; return (frame, detected SDV metadata, format)."""
    if not upload.size:
        raise GeneratorError("empty_file", f"{upload.name} is empty.")
    path = upload.temporary_file_path()
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    try:
        fmt = sniff_format(head, upload.name or "")
        profile = ingest.profile_table(path, fmt)
    except IngestError as error:
        raise GeneratorError(error.code, f"{upload.name}: {error.message}") from None
    return ingest.read_table(path, fmt), profile.sdv_metadata, fmt


def corrected_metadata(detected: dict[str, Any], overrides: Mapping[str, str] | None) -> dict[str, Any]:
    """The detected SDV metadata with the provider's column → sdtype corrections."""
    if not overrides:
        return detected
    try:
        return apply_metadata_overrides(detected, dict(overrides))
    except IngestError as error:
        raise GeneratorError(error.code, error.message) from None


def new_generator_version(product: Product, user: User, **fields: Any) -> ProductVersion:
    """The product's next version, submitted now (a generator's version is checked by its fit job)."""
    return create_next_version(
        product, user=user, status=VersionStatus.SUBMITTED, submitted_at=timezone.now(), **fields
    )


def store_table(
    version: ProductVersion, role: str, frame: pd.DataFrame, folder: Path, *, table_name: str, original: str
) -> VersionFile:
    """Store ``frame`` as a Parquet file of ``version`` (reference roles go to the private storage)."""
    path = folder / f"{role}.parquet"
    frame.reset_index(drop=True).to_parquet(path, index=False)
    return add_table_file(
        version, role=role, path=path, fmt="parquet", table_name=table_name, original_filename=original
    )


def store_reference(
    version: ProductVersion, folder: Path, original: str, train: pd.DataFrame, holdout: pd.DataFrame | None
) -> None:
    """Store the provider's train (and holdout) rows privately as files of ``version``."""
    store_table(version, FileRole.TRAIN, train, folder, table_name="train", original=original)
    if holdout is not None:
        store_table(version, FileRole.HOLDOUT, holdout, folder, table_name="holdout", original=original)


def queue_fit(version: ProductVersion) -> Job:
    """Create the version's fit job and send its task after the transaction commits."""
    job = Job.objects.create(kind=Job.Kind.FIT, version=version, engine_version=certification.ENGINE_VERSION)
    from marketplace.generators.tasks import fit_generator_task

    transaction.on_commit(lambda: fit_generator_task.delay(str(job.pk)))
    return job


def read_training_rows(data: HashedFile, metadata: Mapping[str, str] | None) -> tuple[pd.DataFrame, dict]:
    """The rows to fit on and their SDV metadata; refuses fewer than ``MIN_TRAINING_ROWS`` rows."""
    frame, detected, _ = read_upload(data)
    if len(frame) < MIN_TRAINING_ROWS:
        raise GeneratorError(
            "too_few_rows", f"Fitting needs at least {MIN_TRAINING_ROWS} rows; the file has {len(frame)}."
        )
    return frame, corrected_metadata(detected, metadata)


def check_target(target_column: str, frame: pd.DataFrame) -> None:
    if target_column and target_column not in frame.columns:
        raise GeneratorError("unknown_target", f"The target column {target_column!r} is not in the table.")


def create_fitted_generator(
    product: Product,
    *,
    user: User,
    data: HashedFile,
    synthesizer: str,
    epochs: int | None = None,
    constraints: Any = None,
    metadata: Mapping[str, str] | None = None,
    target_column: str = "",
    row_quotas: Mapping[str, Any] | None = None,
    enforce_rules: bool = False,
) -> GeneratorModel:
    """Hold out a random 20% of ``data`` (seed recorded), store train and holdout privately, and queue the fit.

    With ``enforce_rules``, the plausibility rules the certificate will check are discovered on the split
    and those SDV constraints can express are added to ``constraints``; the version records which rules are
    enforced and which no constraint can express (``version.rules``, shown in the certificate).

    ``synthesizer`` is one of gaussian_copula, ctgan, tvae, copula_gan; ``epochs`` (neural ones) 1–2000;
    ``constraints`` SDV 2.0 ``sdv.cag`` specs (see ``fitting.check_constraints``); ``metadata`` column →
    sdtype corrections. All-or-nothing: on a refusal nothing is stored.
    """
    check_generator_product(product, user)
    engines.ensure_hosted(synthesizer)
    if synthesizer not in fitting.SDV_SYNTHESIZERS:
        raise GeneratorError(
            "bad_synthesizer", "Pick a synthesizer: gaussian_copula, ctgan, tvae or copula_gan."
        )
    if epochs is not None and (isinstance(epochs, bool) or not 1 <= int(epochs) <= fitting.MAX_EPOCHS):
        raise GeneratorError("bad_budget", f"Epochs must lie between 1 and {fitting.MAX_EPOCHS}.")
    quotas = check_quotas(row_quotas)
    frame, sdv_metadata = read_training_rows(data, metadata)
    checked = fitting.check_constraints(constraints, list(frame.columns))
    check_target(target_column, frame)
    seed, train, holdout = split_holdout(frame)
    rule_plan = _rule_constraints(train, holdout, sdv_metadata) if enforce_rules else None
    rules: dict[str, Any] = {}
    if rule_plan is not None:
        checked = fitting.check_constraints(
            checked + [spec for spec in rule_plan["constraints"] if spec not in checked], list(frame.columns)
        )
        rules = {key: rule_plan[key] for key in ("enforced", "not_enforced")}
    parameters = {"epochs": int(epochs or fitting.DEFAULT_EPOCHS)} if synthesizer in fitting.NEURAL else {}
    with tempfile.TemporaryDirectory(prefix="synthex-fit-") as folder, transaction.atomic():
        version = new_generator_version(
            product, user, target_column=target_column, sdv_metadata=sdv_metadata, rules=rules
        )
        return start_fitted_generator(
            version,
            Path(folder),
            (data.name or "data")[:255],
            (seed, train, holdout),
            synthesizer=synthesizer,
            sdv_metadata=sdv_metadata,
            parameters=parameters,
            row_quotas=quotas,
            constraints=checked,
        )


def start_fitted_generator(
    version: ProductVersion,
    folder: Path,
    name: str,
    split: tuple[int, pd.DataFrame, pd.DataFrame],
    *,
    synthesizer: str,
    sdv_metadata: dict[str, Any],
    parameters: dict[str, Any],
    row_quotas: dict[str, int],
    constraints: list[dict] | None = None,
) -> GeneratorModel:
    """Store a new version's reference rows (``split`` = seed, train, holdout), create its platform-fitted
    generator and queue the fit; inside the caller's transaction (SDV and Synthex's own engines alike)."""
    seed, train, holdout = split
    store_reference(version, folder, name, train, holdout)
    generator = GeneratorModel.objects.create(
        version=version,
        kind=GeneratorModel.Kind.FITTED,
        synthesizer=synthesizer,
        sdv_metadata=sdv_metadata,
        constraints=constraints or [],
        parameters=parameters,
        holdout_seed=seed,
        holdout_fraction=HOLDOUT_FRACTION,
        training_rows=len(train),
        holdout_rows=len(holdout),
        row_quotas=row_quotas,
    )
    queue_fit(version)
    refresh_product_summary(version.product)
    return generator


def split_holdout(frame: pd.DataFrame) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """(seed, train, holdout): a uniform random ``HOLDOUT_FRACTION`` of the rows held out, with its seed."""
    import secrets

    seed = secrets.randbelow(2**31)
    holdout = frame.sample(frac=HOLDOUT_FRACTION, random_state=seed)
    return seed, frame.drop(index=holdout.index), holdout


def _rule_constraints(train: Any, holdout: Any, sdv_metadata: dict[str, Any]) -> dict[str, list[dict]]:
    """The plausibility rules of the reference split as SDV constraint specs (see ``enforceable``)."""
    from marketplace.certification.engine import EngineError
    from marketplace.certification.engine.plausibility import discover_rules
    from marketplace.certification.plausibility import enforceable

    try:
        rules = discover_rules(
            train.reset_index(drop=True), holdout.reset_index(drop=True), metadata=sdv_metadata
        )
    except EngineError as error:
        raise GeneratorError("bad_data", str(error)) from None
    return enforceable(rules, sdv_metadata)


def create_uploaded_generator(
    product: Product,
    *,
    user: User,
    model_file: HashedFile,
    train: HashedFile,
    holdout: HashedFile | None = None,
    metadata: Mapping[str, str] | None = None,
    target_column: str = "",
    row_quotas: Mapping[str, Any] | None = None,
) -> GeneratorModel:
    """Store an SDV synthesizer file made elsewhere (never opened here) with the provider's reference rows,
    and queue its checks: loading, embedded-rows scan and evaluation sample in the sandbox, then certification.
    """
    check_generator_product(product, user)
    engines.ensure_hosted(Synthesizer.UPLOADED)
    quotas = check_quotas(row_quotas)
    if not model_file.size:
        raise GeneratorError("empty_file", "The synthesizer file is empty.")
    train_frame, detected, _ = read_upload(train)
    holdout_frame = read_upload(holdout)[0] if holdout is not None else None
    if holdout_frame is not None and list(holdout_frame.columns) != list(train_frame.columns):
        raise GeneratorError(
            "reference_columns_differ", "The holdout's columns differ from the train file's."
        )
    check_target(target_column, train_frame)
    sdv_metadata = corrected_metadata(detected, metadata)
    written: str | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="synthex-upload-") as folder, transaction.atomic():
            version = new_generator_version(
                product, user, target_column=target_column, sdv_metadata=sdv_metadata
            )
            store_reference(version, Path(folder), (train.name or "train")[:255], train_frame, holdout_frame)
            saved = storage.store_once(
                "reference",
                model_name(product.organization_id, model_file.sha256, "pkl"),
                cast(File, model_file),
            )
            written = saved.name if saved.is_new else None
            generator = GeneratorModel.objects.create(
                version=version,
                kind=GeneratorModel.Kind.UPLOADED,
                synthesizer=Synthesizer.UPLOADED,
                storage_name=saved.name,
                sha256=model_file.sha256,
                size_bytes=model_file.size,
                sdv_metadata=sdv_metadata,
                training_rows=len(train_frame),
                holdout_rows=len(holdout_frame) if holdout_frame is not None else None,
                row_quotas=quotas,
            )
            queue_fit(version)
            refresh_product_summary(product)
    except BaseException:
        if written is not None:
            storages["reference"].delete(written)
        raise
    finally:
        # The storage may have moved the temporary file into place: close the handle now, while Django's
        # close() tolerates the missing path, rather than at garbage collection.
        model_file.close()
    return generator
