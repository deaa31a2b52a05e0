"""Fixtures for generator tests: a generator product, small real tables, stored generators, hostile pickles."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from generators_support import ADULT_CSV

COLUMNS = ["age", "workclass", "education-num", "hours-per-week", "sex", "class"]


@pytest.fixture(scope="session")
def people() -> pd.DataFrame:
    """400 real adult rows, six columns (numbers and categories, no missing values)."""
    frame = pd.read_csv(ADULT_CSV, na_values=["?"], nrows=1200)[COLUMNS].dropna()
    return frame.head(400).reset_index(drop=True)


@pytest.fixture(scope="session")
def fitted_model_bytes(people: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """An honest SDV 2.0 GaussianCopula fitted on the first 320 people, saved the way SDV saves it."""
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    train = people.head(320)
    path = tmp_path_factory.mktemp("model") / "model.pkl"
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metadata = Metadata.detect_from_dataframes({"table": train})
        model = GaussianCopulaSynthesizer(metadata)
        model.fit({"table": train})
        model.save(str(path))
    return path.read_bytes()


@pytest.fixture
def upload(tmp_path: Path) -> Callable[..., Any]:
    """Wrap bytes or a DataFrame as an uploaded, hashed file (as the API's upload handler makes them)."""
    from marketplace.catalog.uploads import local_upload

    def make(content: bytes | pd.DataFrame, name: str) -> Any:
        path = tmp_path / name
        if isinstance(content, pd.DataFrame):
            content.to_csv(path, index=False)
        else:
            path.write_bytes(content)
        return local_upload(path, name=name)

    return make


@pytest.fixture
def generator_product(provider: Any, product_factory: Callable[..., Any]) -> Any:
    from marketplace.catalog.services import LicensePrice

    return product_factory(
        provider,
        "Census generator",
        kind="generator",
        licenses=[LicensePrice("research", 0, "USD"), LicensePrice("standard", 4900, "USD")],
    )


@pytest.fixture
def tight_sandbox(settings: Any) -> Any:
    """Small sandbox limits, so hostile models are stopped within seconds."""
    settings.SYNTHEX_SANDBOX_WALL_SECONDS = 20
    settings.SYNTHEX_SANDBOX_CPU_SECONDS = 15
    settings.SYNTHEX_SANDBOX_MEMORY_BYTES = 1024**3
    settings.SYNTHEX_SANDBOX_PROCESSES = 32
    return settings


@pytest.fixture
def upload_generator(
    provider: Any,
    generator_product: Any,
    people: pd.DataFrame,
    upload: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
) -> Callable[..., Any]:
    """Upload a synthesizer file with the people as reference data and run its checks (eagerly)."""
    from marketplace.generators.services import setup

    def make(model: bytes, **options: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            generator = setup.create_uploaded_generator(
                generator_product,
                user=provider,
                model_file=upload(model, "model.pkl"),
                train=upload(people.head(320), "train.csv"),
                holdout=upload(people.tail(80), "holdout.csv"),
                **options,
            )
        generator.refresh_from_db()
        return generator

    return make


@pytest.fixture
def ready_generator(
    provider: Any, generator_product: Any, people: pd.DataFrame, fitted_model_bytes: bytes, tmp_path: Path
) -> Any:
    """A certified-looking generator (status ready) with the honest GaussianCopula stored, without the cost
    of certifying it: for tests of drawing rows."""
    import hashlib

    from django.db import transaction

    from marketplace.catalog.models import FileRole
    from marketplace.generators import storage
    from marketplace.generators.models import GeneratorModel
    from marketplace.generators.services import setup

    path = tmp_path / "model.pkl"
    path.write_bytes(fitted_model_bytes)
    sha = hashlib.sha256(fitted_model_bytes).hexdigest()
    train = people.head(320)
    detected = {
        "columns": {
            "age": {"sdtype": "numerical"},
            "workclass": {"sdtype": "categorical"},
            "education-num": {"sdtype": "numerical"},
            "hours-per-week": {"sdtype": "numerical"},
            "sex": {"sdtype": "categorical"},
            "class": {"sdtype": "categorical"},
        },
        "METADATA_SPEC_VERSION": "SINGLE_TABLE_V2",
    }
    with transaction.atomic():
        version = setup.new_generator_version(generator_product, provider)
        version.sdv_metadata = detected
        version.status = "certified"
        version.save()
        setup.store_table(version, FileRole.TRAIN, train, tmp_path, table_name="train", original="t.csv")
        # The published evaluation sample (synthetic in real life): the public facts conditions are checked on.
        setup.store_table(
            version,
            FileRole.SYNTHETIC,
            people.tail(80),
            tmp_path,
            table_name="evaluation_sample",
            original="evaluation_sample.parquet",
        )
        name = storage.save_once(
            "reference", f"org-{generator_product.organization_id}/generators/{sha}.pkl", path
        )
        return GeneratorModel.objects.create(
            version=version,
            kind=GeneratorModel.Kind.UPLOADED,
            synthesizer="uploaded",
            status=GeneratorModel.Status.READY,
            storage_name=name,
            sha256=sha,
            size_bytes=len(fitted_model_bytes),
            sdv_metadata=detected,
            training_rows=len(train),
            row_quotas={"research": 1000, "standard": 5000},
        )
