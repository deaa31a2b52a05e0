"""Fitting on the platform: 80/20 split with a recorded seed, SDV 2.0 constraints, progress, certificate."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from django.core.files.storage import storages

from marketplace.catalog.models import FileRole, ProductVersion
from marketplace.certification.models import Certificate, Job
from marketplace.generators import fitting
from marketplace.generators.errors import GeneratorError
from marketplace.generators.models import GeneratorModel
from marketplace.generators.services import setup

INEQUALITY = [{"type": "Inequality", "low_column_name": "education-num", "high_column_name": "age"}]


@pytest.fixture
def fit(
    provider: Any,
    generator_product: Any,
    people: pd.DataFrame,
    upload: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
) -> Callable[..., GeneratorModel]:
    def make(synthesizer: str, **options: Any) -> GeneratorModel:
        with django_capture_on_commit_callbacks(execute=True):
            generator = setup.create_fitted_generator(
                generator_product,
                user=provider,
                data=upload(people, "people.csv"),
                synthesizer=synthesizer,
                **options,
            )
        generator.refresh_from_db()
        return generator

    return make


def test_fitting_a_gaussian_copula_holds_out_20_percent_and_certifies_the_generator_and_its_sample(
    fit: Callable[..., GeneratorModel], people: pd.DataFrame
) -> None:
    generator = fit("gaussian_copula", constraints=INEQUALITY, target_column="class")
    job = Job.objects.get(version=generator.version, kind=Job.Kind.FIT)
    assert (job.status, job.stage, job.progress, job.error) == ("succeeded", "done", 100, "")
    assert generator.status == GeneratorModel.Status.READY
    assert (generator.training_rows, generator.holdout_rows, generator.holdout_fraction) == (320, 80, 0.2)
    files = {f.role: f for f in generator.version.files.all()}
    holdout = pd.read_parquet(storages["reference"].path(files[FileRole.HOLDOUT].storage_name))
    expected = people.sample(frac=0.2, random_state=generator.holdout_seed)
    pd.testing.assert_frame_equal(holdout, expected.reset_index(drop=True), check_dtype=False)
    with storages["reference"].open(generator.storage_name, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == generator.sha256
    certificate = Certificate.objects.get(version=generator.version)
    artifacts = certificate.document["subject"]["artifacts"]
    assert artifacts == [
        {"name": "evaluation_sample", "sha256": files[FileRole.SYNTHETIC].sha256, "rows": 320, "columns": 6},
        {"name": "generator.gaussian_copula", "sha256": generator.sha256, "rows": 0, "columns": 6},
    ]
    sample = pd.read_parquet(storages["default"].path(files[FileRole.SYNTHETIC].storage_name))
    assert bool((sample["education-num"] < sample["age"]).all())
    assert generator.version.status == "certified"


@pytest.mark.slow
@pytest.mark.parametrize("synthesizer", ["ctgan", "tvae", "copula_gan"])
def test_neural_synthesizers_report_epochs_and_losses(
    fit: Callable[..., GeneratorModel], synthesizer: str
) -> None:
    generator = fit(synthesizer, epochs=2)
    job = Job.objects.get(version=generator.version, kind=Job.Kind.FIT)
    assert (job.status, job.error) == ("succeeded", "")
    assert generator.parameters == {"epochs": 2}
    assert [row["epoch"] for row in generator.loss_values] == [0, 1]
    keys = {"tvae": {"epoch", "loss"}}.get(synthesizer, {"epoch", "generator", "discriminator"})
    assert all(set(row) == keys for row in generator.loss_values)


def test_epoch_progress_is_read_from_the_training_loop_output() -> None:
    seen: list[tuple[int, int, dict[str, float]]] = []
    stream = fitting.EpochProgress(lambda *args: seen.append(args))
    stream.write("\rGen. (0.00) | Discrim. (0.00):   0%|          | 0/3 [00:00<?, ?it/s]")
    stream.write("\rGen. (-0.52) | Discrim. (0.11):  33%|###       | 1/3 [00:01<00:02,  1.00it/s]")
    stream.write("\rLoss: 1.234:  67%|######    | 2/3 [00:02<00:01,  1.00it/s]")
    assert seen == [
        (0, 3, {"generator": 0.0, "discriminator": 0.0}),
        (1, 3, {"generator": -0.52, "discriminator": 0.11}),
        (2, 3, {"loss": 1.234}),
    ]


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"synthesizer": "random_forest"}, "bad_synthesizer"),
        ({"synthesizer": "ctgan", "epochs": 0}, "bad_budget"),
        ({"constraints": [{"type": "ProgrammableConstraint"}]}, "bad_constraints"),
        (
            {"constraints": [{"type": "Inequality", "low_column_name": "age", "high_column_name": "x"}]},
            "bad_constraints",
        ),
        ({"constraints": [{"type": "Range", "low": "age"}]}, "bad_constraints"),
        ({"constraints": "Inequality"}, "bad_constraints"),
        ({"row_quotas": {"standard": 0}}, "bad_quota"),
        ({"row_quotas": {"platinum": 10}}, "bad_quota"),
        ({"target_column": "income"}, "unknown_target"),
    ],
)
def test_bad_fit_requests_are_refused_and_store_nothing(
    provider: Any,
    generator_product: Any,
    people: pd.DataFrame,
    upload: Callable[..., Any],
    options: dict[str, Any],
    code: str,
) -> None:
    arguments = {"synthesizer": "gaussian_copula", **options}
    with pytest.raises(GeneratorError) as refused:
        setup.create_fitted_generator(
            generator_product, user=provider, data=upload(people, "people.csv"), **arguments
        )
    assert refused.value.code == code
    assert ProductVersion.objects.count() == 0
    assert GeneratorModel.objects.count() == 0
    assert storages["reference"].listdir("")[1] == []


def test_a_dataset_product_cannot_take_a_generator(
    provider: Any, product_factory: Callable[..., Any], people: pd.DataFrame, upload: Callable[..., Any]
) -> None:
    product = product_factory(provider, "Plain dataset")
    with pytest.raises(GeneratorError) as refused:
        setup.create_fitted_generator(
            product, user=provider, data=upload(people, "people.csv"), synthesizer="gaussian_copula"
        )
    assert refused.value.code == "not_a_generator_product"


def test_the_api_fits_and_reports_the_job(
    provider: Any,
    buyer: Any,
    generator_product: Any,
    people: pd.DataFrame,
    api_client_for: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = api_client_for(provider)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/products/{generator_product.slug}/generator/",
            {
                "mode": "fit",
                "synthesizer": "gaussian_copula",
                "data": _file(people.to_csv(index=False).encode(), "people.csv"),
                "constraints": json.dumps(INEQUALITY),
                "row_quotas": json.dumps({"research": 1000, "standard": 50000}),
            },
            format="multipart",
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["kind"], body["synthesizer"], body["row_quotas"]) == (
        "fitted",
        "gaussian_copula",
        {"research": 1000, "standard": 50000},
    )
    job = api_client_for(provider).get(f"/api/v1/jobs/{body['job']['id']}/").json()
    assert (job["status"], job["progress"]) == ("succeeded", 100)
    public = api_client_for(buyer).get(f"/api/v1/products/{generator_product.slug}/generator/").json()
    assert (public["status"], public["certificate"] is not None) == ("ready", True)
    refused = client.post(
        f"/api/v1/products/{generator_product.slug}/generator/", {"mode": "upload"}, format="multipart"
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid")
    assert refused.json()["detail"] == "upload needs model and train."


def _file(content: bytes, name: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)


def test_a_fit_that_fails_marks_the_generator_failed_and_certifies_nothing(
    fit: Callable[..., GeneratorModel],
) -> None:
    violated = [{"type": "Inequality", "low_column_name": "age", "high_column_name": "education-num"}]
    generator = fit("gaussian_copula", constraints=violated)
    job = Job.objects.get(version=generator.version, kind=Job.Kind.FIT)
    assert (generator.status, job.status, generator.version.status) == ("failed", "failed", "failed")
    assert job.error.startswith("Fitting failed: ")
    assert generator.error == job.error
    assert (generator.sha256, generator.storage_name) == ("", "")
    assert not Certificate.objects.filter(version=generator.version).exists()
