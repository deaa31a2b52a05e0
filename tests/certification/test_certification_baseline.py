"""A holdout that overlaps train is refused before anything is made: API 400 with the figures, no version,
job, certificate or stored file; ``manage.py certify`` exits with the reason and writes nothing."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError

from marketplace.catalog.models import ProductVersion, VersionFile
from marketplace.certification.models import Certificate, Job

pytestmark = pytest.mark.django_db


def _stored_files() -> list[str]:
    names = []
    for alias in ("default", "reference"):
        storage = storages[alias]
        stack = [""]
        while stack:
            folder = stack.pop()
            dirs, files = storage.listdir(folder)
            stack.extend(f"{folder}/{d}".lstrip("/") for d in dirs)
            names.extend(f"{alias}:{folder}/{f}" for f in files)
    return sorted(names)


def _named(frame: pd.DataFrame, name: str) -> io.BytesIO:
    handle = io.BytesIO(frame.to_csv(index=False).encode())
    handle.name = name
    return handle


def _half_train(small_tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    holdout = small_tables["holdout"]
    return pd.concat(
        [small_tables["train"].iloc[: len(holdout) // 2], holdout.iloc[len(holdout) // 2 :]],
        ignore_index=True,
    )


@pytest.mark.parametrize("overlap", ["holdout_is_train", "holdout_half_train"])
def test_api_refuses_an_overlapping_holdout_and_leaves_nothing_behind(
    overlap, provider, api_client_for, product_factory, small_tables, django_capture_on_commit_callbacks
):
    product = product_factory(provider, "Overlapping")
    holdout = small_tables["train"] if overlap == "holdout_is_train" else _half_train(small_tables)
    before = _stored_files()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(provider).post(
            f"/api/v1/products/{product.slug}/versions/",
            {
                "synthetic": _named(small_tables["synthetic"], "people.csv"),
                "train": _named(small_tables["train"], "train.csv"),
                "holdout": _named(holdout, "holdout.csv"),
            },
            format="multipart",
        )

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "holdout_overlaps_train"
    assert "The holdout overlaps train" in body["detail"]
    assert body["baseline"]["overlapping"] is True
    assert body["baseline"]["holdout_rows_in_train"] >= 0.5
    assert body["baseline"]["holdout_rows_in_train"] > body["baseline"]["train_rows_repeated_in_train"]
    assert ProductVersion.objects.filter(product=product).count() == 0
    assert VersionFile.objects.count() == 0
    assert Job.objects.count() == 0
    assert Certificate.objects.count() == 0
    # Nothing new is stored (other tests' leftovers may be swept meanwhile, so only additions count).
    assert set(_stored_files()) - set(before) == set()


def test_submitting_a_draft_with_an_overlapping_holdout_is_refused_and_stays_a_draft(
    provider, api_client_for, product_factory, small_tables, django_capture_on_commit_callbacks
):
    product = product_factory(provider, "Draft overlapping")
    response = api_client_for(provider).post(
        f"/api/v1/products/{product.slug}/versions/",
        {
            "synthetic": _named(small_tables["synthetic"], "people.csv"),
            "train": _named(small_tables["train"], "train.csv"),
            "holdout": _named(small_tables["train"], "holdout.csv"),
            "submit": "false",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    with django_capture_on_commit_callbacks(execute=True):
        refused = api_client_for(provider).post(
            f"/api/v1/products/{product.slug}/versions/1/submit/", {}, format="json"
        )

    assert refused.status_code == 400, refused.content
    assert refused.json()["code"] == "holdout_overlaps_train"
    version = ProductVersion.objects.get(product=product)
    assert version.status == "draft"
    assert Job.objects.count() == 0
    assert Certificate.objects.count() == 0


def test_a_disjoint_holdout_with_natural_duplicates_is_accepted(
    provider, api_client_for, product_factory, small_tables
):
    product = product_factory(provider, "Natural duplicates")
    response = api_client_for(provider).post(
        f"/api/v1/products/{product.slug}/versions/",
        {
            "synthetic": _named(small_tables["synthetic"], "people.csv"),
            "train": _named(small_tables["train"], "train.csv"),
            "holdout": _named(small_tables["holdout"], "holdout.csv"),
        },
        format="multipart",
    )

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "submitted"
    assert Job.objects.filter(version__product=product).count() == 1


def test_certify_command_exits_with_the_figures_and_writes_nothing(small_tables, tmp_path):
    for role, frame in small_tables.items():
        frame.to_csv(tmp_path / f"{role}.csv", index=False)
    output = tmp_path / "CERT.json"

    with pytest.raises(CommandError, match="The holdout overlaps train: 100.0% of holdout rows"):
        call_command(
            "certify",
            "--synthetic",
            str(tmp_path / "synthetic.csv"),
            "--train",
            str(tmp_path / "train.csv"),
            "--holdout",
            str(tmp_path / "train.csv"),
            "--output",
            str(output),
        )
    assert not output.exists()


def test_the_certificate_page_shows_the_privacy_tests_with_their_ids_and_the_baseline(
    provider, product_factory, version_factory, django_capture_on_commit_callbacks, client
):
    product = product_factory(provider, "Certified page")
    with django_capture_on_commit_callbacks(execute=True):
        version = version_factory(product, provider, submit=True, target="class")
    certificate = Certificate.objects.get(version=version)
    privacy = certificate.document["privacy"]

    page = client.get(f"/certificates/{certificate.id}/").content.decode()

    assert privacy["baseline_integrity"]["overlapping"] is False
    assert privacy["shadow_attack"]["ran"] is False
    assert "unique_exact_match/v1" in page
    assert "membership_density_vulnerable_tpr_at_1pct/v1" in page
    assert "density ratio (DOMIAS)" in page
    assert "Shadow-model attack: not run" in page
    assert "Holdout and train" in page


def test_api_refuses_a_holdout_too_small_to_see_copies_and_leaves_nothing_behind(
    provider, api_client_for, product_factory, small_tables, django_capture_on_commit_callbacks
):
    """A dishonest provider keeps the holdout tiny so that copies of train rows look as expected."""
    product = product_factory(provider, "Tiny holdout")
    before = _stored_files()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(provider).post(
            f"/api/v1/products/{product.slug}/versions/",
            {
                "synthetic": _named(small_tables["synthetic"], "people.csv"),
                "train": _named(small_tables["train"], "train.csv"),
                "holdout": _named(small_tables["holdout"].head(40), "holdout.csv"),
            },
            format="multipart",
        )

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "holdout_too_small"
    assert "at least 80" in body["detail"]
    assert body["baseline"] == {"train_rows": 800, "holdout_rows": 40, "holdout_rows_needed": 80}
    assert ProductVersion.objects.filter(product=product).count() == 0
    assert Job.objects.count() == 0
    assert Certificate.objects.count() == 0
    assert set(_stored_files()) - set(before) == set()
