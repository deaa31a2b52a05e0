"""Writes for generator products: fit on the platform, accept an uploaded synthesizer, certify, draw rows.

Guarantees:
- An uploaded generator file is never unpickled in this process: only ``sandbox.run_in_sandbox`` loads it,
  and only output that passed ``schema.check_output`` leaves the job folder. Stored generator files are
  checked against their SHA-256 before every use.
- A fitted generator holds out a uniform random ``holdout_fraction`` of the provider's rows with a recorded
  seed; the certificate covers the generator file (its SHA-256) and the evaluation sample.
- A draw consumes quota only when it succeeds: its row is marked succeeded and the caller's commit hook
  (which records the ledger event) run in one transaction; a failed draw is marked failed and consumes
  nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import re
import secrets
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import F, Max, Q, Sum
from django.utils import timezone
from django.utils.module_loading import import_string

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
from marketplace.catalog.services import CatalogError, ensure_can_manage, refresh_product_summary
from marketplace.catalog.uploads import HashedFile
from marketplace.certification import services as certification
from marketplace.certification.models import Certificate, Job
from marketplace.core import leases
from marketplace.core.errors import JsonableError
from marketplace.generators import engines
from marketplace.generators.models import GeneratorModel, SampleDraw, Synthesizer
from marketplace.generators.runner import row_hashes
from marketplace.generators.sandbox import (
    SandboxLimits,
    SandboxRefused,
    job_folder,
    open_output,
    run_in_sandbox,
)
from marketplace.generators.schema import DeclaredSchema, OutputInvalid, check_output

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

TABLE = "table"
HOLDOUT_FRACTION = 0.2
DEFAULT_EPOCHS = 100
MAX_EPOCHS = 2000
MIN_TRAINING_ROWS = 50
MAX_EVALUATION_ROWS = 100_000
MAX_ROWS_PER_DRAW = 5_000_000
SAMPLE_BATCH_ROWS = 100_000
DEFAULT_ROW_QUOTAS = {"research": 10_000, "standard": 100_000, "commercial": 1_000_000}
NEURAL = (Synthesizer.CTGAN, Synthesizer.TVAE, Synthesizer.COPULA_GAN)
CONSTRAINT_TYPES = ("FixedCombinations", "FixedIncrements", "Inequality", "Range", "OneHotEncoding")


class GeneratorError(JsonableError):
    """A refused generator operation: ``code`` a short slug, ``message`` a sentence for the user."""


@dataclass(frozen=True)
class CertifiedArtifact:
    """What the certificate names besides tables: the generator file (``rows`` is 0 for a model)."""

    table_name: str
    sha256: str
    rows: int
    column_count: int


@dataclass(frozen=True)
class SampledFile:
    path: Path
    rows: int
    sha256: str
    size_bytes: int


def _check_hosted(synthesizer: str) -> None:
    """Refuse (403) a synthesizer whose engine this deployment does not host (``SYNTHEX_HOSTED_ENGINES``)."""
    try:
        engines.ensure_hosted(synthesizer)
    except engines.EngineNotAllowed as error:
        raise GeneratorError(error.code, error.message, 403) from None


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


# -- constraints and synthesizers ---------------------------------------------------------------------------


def check_constraints(constraints: Any, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Validate constraint specs ``[{"type": "Inequality", "low_column_name": ..., ...}, ...]`` against the
    SDV 2.0 ``sdv.cag`` classes in ``CONSTRAINT_TYPES`` and the table's ``columns``; return them unchanged.
    """
    import inspect

    from sdv import cag

    if constraints in (None, ""):
        return []
    if not isinstance(constraints, list) or not all(isinstance(item, dict) for item in constraints):
        raise GeneratorError("bad_constraints", "Constraints must be a list of objects with a 'type'.")
    known = set(columns)
    for item in constraints:
        kind = item.get("type")
        if kind not in CONSTRAINT_TYPES:
            raise GeneratorError(
                "bad_constraints", f"Unknown constraint {kind!r}; use one of {', '.join(CONSTRAINT_TYPES)}."
            )
        parameters = {key: value for key, value in item.items() if key != "type"}
        accepted = set(inspect.signature(getattr(cag, kind)).parameters) - {"table_name"}
        unknown = sorted(set(parameters) - accepted)
        if unknown:
            raise GeneratorError(
                "bad_constraints", f"{kind} takes {', '.join(sorted(accepted))}; not {', '.join(unknown)}."
            )
        named = [
            value for key, value in parameters.items() if key.endswith("column_name") or key == "column_names"
        ]
        for name in [n for value in named for n in (value if isinstance(value, list) else [value])]:
            if name not in known:
                raise GeneratorError("bad_constraints", f"{kind} names {name!r}, which is not a column.")
        try:
            getattr(cag, kind)(**parameters)
        except (TypeError, ValueError) as error:
            raise GeneratorError("bad_constraints", f"{kind}: {error}") from None
    return constraints


def _build_synthesizer(
    synthesizer: str, sdv_metadata: dict[str, Any], parameters: Mapping[str, Any], constraints: list[dict]
) -> Any:
    from sdv import cag
    from sdv.metadata import Metadata
    from sdv.single_table import (
        CopulaGANSynthesizer,
        CTGANSynthesizer,
        GaussianCopulaSynthesizer,
        TVAESynthesizer,
    )

    metadata = Metadata.load_from_dict({"tables": {TABLE: sdv_metadata}})
    classes = {
        Synthesizer.GAUSSIAN_COPULA: GaussianCopulaSynthesizer,
        Synthesizer.CTGAN: CTGANSynthesizer,
        Synthesizer.TVAE: TVAESynthesizer,
        Synthesizer.COPULA_GAN: CopulaGANSynthesizer,
    }
    arguments: dict[str, Any] = {"enforce_min_max_values": True}
    if synthesizer in NEURAL:
        arguments.update(epochs=int(parameters.get("epochs", DEFAULT_EPOCHS)), verbose=True)
        if parameters.get("batch_size"):
            arguments["batch_size"] = int(parameters["batch_size"])
    model = classes[Synthesizer(synthesizer)](metadata, **arguments)
    if constraints:
        model.add_constraints(
            [
                getattr(cag, item["type"])(**{k: v for k, v in item.items() if k != "type"})
                for item in constraints
            ]
        )
    return model


class _EpochProgress(io.TextIOBase):
    """Reads tqdm's progress lines (CTGAN/TVAE with ``verbose``) and reports (epoch, epochs, losses)."""

    COUNTS = re.compile(r"(\d+)/(\d+) \[")
    LOSSES = re.compile(r"(Gen\.|Discrim\.|Loss:)\s*\(?\s*(-?\d+(?:\.\d+)?)")

    def __init__(self, report: Callable[[int, int, dict[str, float]], None]) -> None:
        self.report = report
        self.last = -1

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for line in re.split(r"[\r\n]", text):
            counts = self.COUNTS.search(line)
            if counts is None:
                continue
            epoch, epochs = int(counts.group(1)), int(counts.group(2))
            if epoch == self.last:
                continue
            self.last = epoch
            losses = {
                {"Gen.": "generator", "Discrim.": "discriminator", "Loss:": "loss"}[name]: float(value)
                for name, value in self.LOSSES.findall(line)
            }
            self.report(epoch, epochs, losses)
        return len(text)


# -- storage helpers ------------------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _save(alias: str, name: str, path: Path) -> str:
    storage = storages[alias]
    if storage.exists(name):
        return name
    with open(path, "rb") as handle:
        return storage.save(name, File(handle, name=path.name))


def _fetch(alias: str, name: str, target: Path, expected_sha256: str | None = None) -> Path:
    digest = hashlib.sha256()
    with storages[alias].open(name, "rb") as source, open(target, "wb") as sink:
        for chunk in iter(lambda: source.read(1024 * 1024), b""):
            digest.update(chunk)
            sink.write(chunk)
    if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
        raise GeneratorError(
            "integrity", "The stored generator file no longer matches its recorded SHA-256; it was not used."
        )
    return target


def _write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame.reset_index(drop=True).to_parquet(path, index=False)
    return path


def _store_table(
    version: ProductVersion, role: str, frame: pd.DataFrame, folder: Path, *, table_name: str, original: str
) -> VersionFile:
    """Store ``frame`` as a Parquet file of ``version`` (reference roles go to the private storage)."""
    path = _write_parquet(frame, folder / f"{role}.parquet")
    profile = ingest.profile_table(path, "parquet")
    sha = _sha256_file(path)
    if role == FileRole.SYNTHETIC:
        alias, name = "default", f"objects/{sha[:2]}/{sha}.parquet"
    else:
        alias, name = "reference", f"org-{version.product.organization_id}/{sha[:2]}/{sha}.parquet"
    stored = _save(alias, name, path)
    return VersionFile.objects.create(
        version=version,
        role=role,
        table_name=table_name,
        original_filename=original,
        format="parquet",
        storage_name=stored,
        sha256=sha,
        size_bytes=path.stat().st_size,
        rows=profile.rows,
        column_count=len(profile.columns),
        profile=profile.to_dict(),
    )


def _read_upload(upload: HashedFile) -> tuple[pd.DataFrame, dict[str, Any], str]:
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


def _new_version(product: Product, user: User) -> ProductVersion:
    locked = Product.objects.select_for_update().get(pk=product.pk)
    number = (locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    return ProductVersion.objects.create(
        product=locked,
        number=number,
        created_by=user,
        status=VersionStatus.SUBMITTED,
        submitted_at=timezone.now(),
    )


def _check_generator_product(product: Product, user: User) -> None:
    try:
        ensure_can_manage(user, product)
    except CatalogError as error:
        raise GeneratorError(error.code, error.message, error.status) from None
    if product.kind != ProductKind.GENERATOR:
        raise GeneratorError(
            "not_a_generator_product", "This product sells datasets; create a generator product for models."
        )


def _check_quotas(row_quotas: Mapping[str, Any] | None) -> dict[str, int]:
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


def _metadata(detected: dict[str, Any], overrides: Mapping[str, str] | None) -> dict[str, Any]:
    if not overrides:
        return detected
    try:
        return apply_metadata_overrides(detected, dict(overrides))
    except IngestError as error:
        raise GeneratorError(error.code, error.message) from None


def _queue_fit(version: ProductVersion) -> Job:
    job = Job.objects.create(kind=Job.Kind.FIT, version=version, engine_version=certification.ENGINE_VERSION)
    from marketplace.generators.tasks import fit_generator_task

    transaction.on_commit(lambda: fit_generator_task.delay(str(job.pk)))
    return job


# -- creating generators --------------------------------------------------------------------------------------


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
    ``constraints`` SDV 2.0 ``sdv.cag`` specs (see ``check_constraints``); ``metadata`` column → sdtype
    corrections. All-or-nothing: on a refusal nothing is stored.
    """
    _check_generator_product(product, user)
    _check_hosted(synthesizer)
    if synthesizer not in (Synthesizer.GAUSSIAN_COPULA, *NEURAL):
        raise GeneratorError(
            "bad_synthesizer", "Pick a synthesizer: gaussian_copula, ctgan, tvae or copula_gan."
        )
    if epochs is not None and (isinstance(epochs, bool) or not 1 <= int(epochs) <= MAX_EPOCHS):
        raise GeneratorError("bad_budget", f"Epochs must lie between 1 and {MAX_EPOCHS}.")
    quotas = _check_quotas(row_quotas)
    frame, detected, _ = _read_upload(data)
    if len(frame) < MIN_TRAINING_ROWS:
        raise GeneratorError(
            "too_few_rows", f"Fitting needs at least {MIN_TRAINING_ROWS} rows; the file has {len(frame)}."
        )
    sdv_metadata = _metadata(detected, metadata)
    checked = check_constraints(constraints, list(frame.columns))
    if target_column and target_column not in frame.columns:
        raise GeneratorError("unknown_target", f"The target column {target_column!r} is not in the table.")
    seed = secrets.randbelow(2**31)
    holdout = frame.sample(frac=HOLDOUT_FRACTION, random_state=seed)
    train = frame.drop(index=holdout.index)
    rule_plan = _rule_constraints(train, holdout, sdv_metadata) if enforce_rules else None
    if rule_plan is not None:
        checked = check_constraints(
            checked + [spec for spec in rule_plan["constraints"] if spec not in checked], list(frame.columns)
        )
    parameters = {"epochs": int(epochs or DEFAULT_EPOCHS)} if synthesizer in NEURAL else {}
    with tempfile.TemporaryDirectory(prefix="synthex-fit-") as folder, transaction.atomic():
        version = _new_version(product, user)
        version.target_column = target_column
        version.sdv_metadata = sdv_metadata
        if rule_plan is not None:
            version.rules = {key: rule_plan[key] for key in ("enforced", "not_enforced")}
        version.save(update_fields=["target_column", "sdv_metadata", "rules"])
        original = (data.name or "data")[:255]
        _store_table(version, FileRole.TRAIN, train, Path(folder), table_name="train", original=original)
        _store_table(
            version, FileRole.HOLDOUT, holdout, Path(folder), table_name="holdout", original=original
        )
        generator = GeneratorModel.objects.create(
            version=version,
            kind=GeneratorModel.Kind.FITTED,
            synthesizer=synthesizer,
            sdv_metadata=sdv_metadata,
            constraints=checked,
            parameters=parameters,
            holdout_seed=seed,
            holdout_fraction=HOLDOUT_FRACTION,
            training_rows=len(train),
            holdout_rows=len(holdout),
            row_quotas=quotas,
        )
        _queue_fit(version)
        refresh_product_summary(product)
    return generator


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
    _check_generator_product(product, user)
    _check_hosted(Synthesizer.UPLOADED)
    quotas = _check_quotas(row_quotas)
    if not model_file.size:
        raise GeneratorError("empty_file", "The synthesizer file is empty.")
    train_frame, detected, _ = _read_upload(train)
    holdout_frame = _read_upload(holdout)[0] if holdout is not None else None
    if holdout_frame is not None and list(holdout_frame.columns) != list(train_frame.columns):
        raise GeneratorError(
            "reference_columns_differ", "The holdout's columns differ from the train file's."
        )
    if target_column and target_column not in train_frame.columns:
        raise GeneratorError("unknown_target", f"The target column {target_column!r} is not in the table.")
    sdv_metadata = _metadata(detected, metadata)
    sha = model_file.sha256
    written: str | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="synthex-upload-") as folder, transaction.atomic():
            version = _new_version(product, user)
            version.target_column = target_column
            version.sdv_metadata = sdv_metadata
            version.save(update_fields=["target_column", "sdv_metadata"])
            original = (train.name or "train")[:255]
            _store_table(
                version, FileRole.TRAIN, train_frame, Path(folder), table_name="train", original=original
            )
            if holdout_frame is not None:
                _store_table(
                    version,
                    FileRole.HOLDOUT,
                    holdout_frame,
                    Path(folder),
                    table_name="holdout",
                    original=original,
                )
            name = f"org-{product.organization_id}/generators/{sha[:2]}/{sha}.pkl"
            storage = storages["reference"]
            if not storage.exists(name):
                model_file.seek(0)
                written = storage.save(name, cast(Any, model_file))
                name = written
            generator = GeneratorModel.objects.create(
                version=version,
                kind=GeneratorModel.Kind.UPLOADED,
                synthesizer=Synthesizer.UPLOADED,
                storage_name=name,
                sha256=sha,
                size_bytes=model_file.size,
                sdv_metadata=sdv_metadata,
                training_rows=len(train_frame),
                holdout_rows=len(holdout_frame) if holdout_frame is not None else None,
                row_quotas=quotas,
            )
            _queue_fit(version)
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


# -- the fit job ----------------------------------------------------------------------------------------------


def _job_progress(job: Job) -> Callable[[str, int], None]:
    last_percent, last_stage = [-100], [""]

    def write(stage: str, percent: int) -> None:
        percent = max(0, min(100, percent))
        if stage != last_stage[0] or percent - last_percent[0] >= 2:
            Job.objects.filter(pk=job.pk).update(stage=stage[:40], progress=percent)
            last_percent[0], last_stage[0] = percent, stage

    return write


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
        path = _fetch(item.storage_alias, item.storage_name, folder / f"{role}.{item.format}", item.sha256)
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
    progress = _job_progress(job)
    with tempfile.TemporaryDirectory(prefix="synthex-generator-") as name:
        folder = Path(name)
        train, holdout = _reference(generator.version, folder)
        rows = min(len(train), MAX_EVALUATION_ROWS)
        if generator.kind == GeneratorModel.Kind.FITTED:
            evaluation_frame = _fit(generator, train, folder, rows, progress)
        else:
            evaluation_frame = _check_upload(generator, train, folder, rows, progress)
        _certify(generator, evaluation_frame, train, holdout, folder, progress)
    return _mark_ready(generator)


def _mark_ready(generator: GeneratorModel) -> GeneratorModel:
    GeneratorModel.objects.filter(pk=generator.pk).update(
        status=GeneratorModel.Status.READY, ready_at=timezone.now()
    )
    generator.refresh_from_db()
    return generator


def _fit(
    generator: GeneratorModel,
    train: pd.DataFrame,
    folder: Path,
    rows: int,
    progress: Callable[[str, int], None],
) -> pd.DataFrame:
    import numpy as np

    from marketplace.generators import native

    if engines.is_native(generator.synthesizer):
        return native.fit_generator(generator, train, folder, rows, progress)
    losses: list[dict[str, float]] = []

    def on_epoch(epoch: int, epochs: int, loss: dict[str, float]) -> None:
        if loss:
            losses.append({"epoch": epoch, **loss})
        shown = " ".join(f"{key[0].upper()} {value:.2f}" for key, value in loss.items())
        progress(f"epoch {epoch}/{epochs} {shown}".strip(), 5 + int(55 * epoch / max(epochs, 1)))

    progress("fitting", 5)
    model = _build_synthesizer(
        generator.synthesizer, generator.sdv_metadata, generator.parameters, list(generator.constraints)
    )
    np.random.seed(generator.holdout_seed or 0)
    with (
        contextlib.redirect_stderr(_EpochProgress(on_epoch)),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            model.fit({TABLE: train})
        except Exception as error:
            raise GeneratorError("fit_failed", f"Fitting failed: {error}") from error
        progress("sampling evaluation rows", 60)
        np.random.seed((generator.holdout_seed or 0) + 1)
        evaluation = model.sample(num_rows=rows)
    if isinstance(evaluation, dict):
        evaluation = evaluation[TABLE]
    if generator.synthesizer in NEURAL:
        losses = _loss_table(model) or losses
    model_path = folder / "model.pkl"
    model.save(str(model_path))
    sha = _sha256_file(model_path)
    name = _save(
        "reference",
        f"org-{generator.version.product.organization_id}/generators/{sha[:2]}/{sha}.pkl",
        model_path,
    )
    GeneratorModel.objects.filter(pk=generator.pk).update(
        storage_name=name, sha256=sha, size_bytes=model_path.stat().st_size, loss_values=losses
    )
    generator.refresh_from_db()
    return evaluation


def _loss_table(model: Any) -> list[dict[str, float]]:
    """Per-epoch mean losses from SDV's ``get_loss_values`` (columns differ between CTGAN and TVAE)."""
    try:
        table = model.get_loss_values()
    except Exception:
        return []
    if table is None or table.empty:
        return []
    renamed = table.rename(
        columns={
            "Epoch": "epoch",
            "Generator Loss": "generator",
            "Discriminator Loss": "discriminator",
            "Distriminator Loss": "discriminator",
            "Loss": "loss",
        }
    )
    keep = [c for c in ("generator", "discriminator", "loss") if c in renamed.columns]
    grouped = renamed.groupby("epoch")[keep].mean().reset_index()
    out = []
    for record in grouped.to_dict("records"):
        out.append(
            {
                key: (int(value) if key == "epoch" else float(value))
                for key, value in record.items()
                if not (isinstance(value, float) and math.isnan(value))
            }
        )
    return out


def _check_upload(
    generator: GeneratorModel,
    train: pd.DataFrame,
    folder: Path,
    rows: int,
    progress: Callable[[str, int], None],
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
        _fetch("reference", generator.storage_name, folder / "model.pkl", generator.sha256)
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
    model_columns = list(((response.get("model") or {}).get("metadata") or {}).get("tables", {}).values())
    if model_columns:
        declared = list(model_columns[0].get("columns", {}))
        if declared and declared != columns:
            raise GeneratorError(
                "wrong_columns",
                f"The model was fitted on columns {', '.join(declared)}; the reference data has "
                f"{', '.join(columns)}.",
            )
    return {key: int(scan.get(key, 0)) for key in ("objects", "frames", "rows_scanned", "matched_rows")}


def _certify(
    generator: GeneratorModel,
    evaluation_frame: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    folder: Path,
    progress: Callable[[str, int], None],
) -> None:
    from marketplace.certification.engine import EngineConfig, EngineError, evaluate

    version = generator.version
    progress("certifying", 70)
    synthetic = version.files.filter(role=FileRole.SYNTHETIC).first()
    if synthetic is None:
        synthetic = _store_table(
            version,
            FileRole.SYNTHETIC,
            evaluation_frame,
            folder,
            table_name="evaluation_sample",
            original="evaluation_sample.parquet",
        )
    stored = ingest.read_table(
        _fetch(
            synthetic.storage_alias, synthetic.storage_name, folder / "evaluation.parquet", synthetic.sha256
        ),
        "parquet",
    )
    try:
        result = evaluate(
            stored,
            train,
            holdout,
            target=version.target_column or None,
            metadata=generator.sdv_metadata or None,
            config=EngineConfig(seed=version.pk),
            progress=lambda stage, percent: progress(f"certifying: {stage}", 70 + int(percent * 0.25)),
            rules=version.rules or None,
        ).to_dict()
    except EngineError as error:
        raise GeneratorError("certification_failed", str(error)) from error
    from marketplace.generators import native

    native.add_certificate_sections(generator, result)
    from marketplace.generators import shadow

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
    certification.issue_certificate(version, result, cast(list[VersionFile], [synthetic, artifact]))


def fail_generator(job: Job, message: str) -> None:
    """Fail the attempt ``job`` (as claimed) and its generator; nothing when another attempt holds the job."""
    if not Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).exists():
        return
    GeneratorModel.objects.filter(version_id=job.version_id).exclude(
        status=GeneratorModel.Status.READY
    ).update(status=GeneratorModel.Status.FAILED, error=message)
    certification.finish_job(job, error=message)


# -- drawing rows ---------------------------------------------------------------------------------------------


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
        _fetch("reference", generator.storage_name, job / "model.pkl", generator.sha256)
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
                sha, size = _copy_hashed(output, target)
        except SandboxRefused as error:
            raise GeneratorError(error.code, error.message) from None
        except OutputInvalid as error:
            raise GeneratorError(error.code, error.message) from None
    return SampledFile(path=target, rows=rows, sha256=sha, size_bytes=size)


def _copy_hashed(source: BinaryIO, target: Path) -> tuple[str, int]:
    """Copy ``source`` into a new file ``target``; return the SHA-256 (hex) and the size in bytes copied."""
    digest = hashlib.sha256()
    size = 0
    with open(target, "xb") as sink:
        for chunk in iter(lambda: source.read(1024 * 1024), b""):
            digest.update(chunk)
            sink.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


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
    sample = _public_sample(generator)
    for name, value in conditions.items():
        if not _in_public_sample(sample, name, columns[name]["sdtype"], value):
            raise GeneratorError(
                "impossible_conditions",
                f"{name} = {value!r} lies outside the values of this generator's published sample.",
            )
    return dict(conditions)


def _public_sample(generator: GeneratorModel) -> VersionFile:
    """The generator's evaluation sample (synthetic, published with its certificate)."""
    published = generator.version.files.filter(role=FileRole.SYNTHETIC, deleted_at__isnull=True)
    sample = published.order_by("pk").first()
    if sample is None:
        raise GeneratorError(
            "impossible_conditions",
            "This generator has no published sample to check conditions against; draw without conditions.",
        )
    return sample


def _in_public_sample(sample: VersionFile, name: str, sdtype: str, value: Any) -> bool:
    """Whether ``value`` is among (categorical, boolean) or within the range of (numerical) the values of
    column ``name`` in the published sample: from its profile, or from the file when the profile's list of
    top values is not the complete list."""
    profile = next((c for c in sample.profile.get("columns", []) if c.get("name") == name), None)
    if profile is None:
        return False
    if sdtype == "numerical":
        low, high = profile.get("min"), profile.get("max")
        return isinstance(low, int | float) and isinstance(high, int | float) and low <= value <= high
    top = profile.get("top_values", [])
    if profile.get("distinct_is_exact") and len(top) >= profile.get("distinct", 0):
        known = {str(item[0]) for item in top}
    else:
        known = _sample_values(sample, name)
    return str(value) in known or (sdtype == "boolean" and str(value).lower() in {k.lower() for k in known})


def _sample_values(sample: VersionFile, name: str) -> set[str]:
    """The distinct values of column ``name`` of the published sample, as text (read from its Parquet)."""
    import pyarrow.parquet as pq

    if sample.format != "parquet":
        return set()
    with storages[sample.storage_alias].open(sample.storage_name, "rb") as handle:
        column = pq.read_table(handle, columns=[name]).column(0).unique().to_pylist()
    return {str(value) for value in column if value is not None}


def quota_for(generator: GeneratorModel, license_code: str) -> int:
    return int(generator.row_quotas.get(license_code, DEFAULT_ROW_QUOTAS.get(license_code, 0)))


def reserved_rows(entitlement_id: str) -> int:
    """Rows drawn or being drawn under an entitlement (failed draws count for nothing)."""
    total = SampleDraw.objects.filter(
        entitlement_id=entitlement_id,
        status__in=[SampleDraw.Status.QUEUED, SampleDraw.Status.RUNNING, SampleDraw.Status.SUCCEEDED],
    ).aggregate(rows=Sum("rows"))["rows"]
    return int(total or 0)


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
    _check_hosted(generator.synthesizer)
    if isinstance(rows, bool) or not isinstance(rows, int):
        raise GeneratorError("bad_rows", "rows must be a whole number.")
    if rows <= 0:
        raise GeneratorError("bad_rows", "rows must be at least 1.")
    if rows > MAX_ROWS_PER_DRAW:
        raise GeneratorError(
            "too_many_rows", f"One draw makes at most {MAX_ROWS_PER_DRAW:,} rows; split the request."
        )
    left = quota_rows - reserved_rows(entitlement_id)
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
    """Make a queued draw's rows in the sandbox, store them, and commit (draw succeeded + commit hook) in one
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
            sampled = draw_in_sandbox(
                draw.generator,
                rows=rows_with_spares(draw.rows),
                seed=draw.seed,
                conditions=draw.conditions,
                folder=Path(folder),
            )
            stored = _save("default", f"samples/{draw.id}.parquet", sampled.path)
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


def describe(generator: GeneratorModel) -> dict[str, Any]:
    """The public description of a generator (no reference data, no seed)."""
    return {
        "kind": generator.kind,
        "synthesizer": generator.synthesizer,
        "status": generator.status,
        "sha256": generator.sha256,
        "columns": list(generator.sdv_metadata.get("columns", {})),
        "constraints": generator.constraints,
        "parameters": generator.parameters,
        "holdout_fraction": generator.holdout_fraction
        if generator.kind == GeneratorModel.Kind.FITTED
        else None,
        "training_rows": generator.training_rows,
        "loss_values": generator.loss_values,
        "scan": generator.scan,
        "row_quotas": generator.row_quotas,
        "error": generator.error,
    }


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
