"""Issue 18 #4: staff (and the owner) read 20 real train and 20 holdout rows through the version API's
``profile.preview`` and the upload admin. Reference rows are read by certification only: every page, API
answer and admin screen shows a reference file's shape (row count, column names and types), no values."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from django.test import Client

from marketplace.catalog.models import Upload, VersionFile

pytestmark = pytest.mark.django_db

SECRET = "real-person"


def reference_tables() -> dict[str, pd.DataFrame]:
    """Synthetic rows and real rows told apart by their text: every real cell contains ``SECRET``."""
    ages = list(range(20, 80))
    return {
        "synthetic": pd.DataFrame({"name": [f"synthetic-{i}" for i in ages], "age": ages}),
        "train": pd.DataFrame(
            {"name": [f"{SECRET}-train-{i}" for i in ages], "age": [a + 1000 for a in ages]}
        ),
        "holdout": pd.DataFrame(
            {"name": [f"{SECRET}-holdout-{i}" for i in ages], "age": [a + 2000 for a in ages]}
        ),
    }


def upload_session(client: Any, payload: bytes, name: str) -> str:
    started = client.post("/api/v1/uploads/", {"filename": name, "size": len(payload)}, format="json")
    assert started.status_code == 201, started.content
    upload_id = started.json()["id"]
    put = client.generic(
        "PUT", f"/api/v1/uploads/{upload_id}/chunks/0/", payload, content_type="application/octet-stream"
    )
    assert put.status_code == 200, put.content
    assert client.post(f"/api/v1/uploads/{upload_id}/complete/").status_code == 200
    return upload_id


@pytest.fixture
def staff(user_factory: Callable[..., Any]) -> Any:
    return user_factory("moderator", is_staff=True, is_superuser=True)


def test_no_endpoint_shows_staff_or_owner_a_real_row(
    provider: Any, staff: Any, api_client_for: Callable[[Any], Any], product_factory: Callable[..., Any]
) -> None:
    product = product_factory(provider, "Private rows")
    owner = api_client_for(provider)
    payloads = {role: frame.to_csv(index=False).encode() for role, frame in reference_tables().items()}
    ids = {role: upload_session(owner, payload, f"{role}.csv") for role, payload in payloads.items()}
    created = owner.post(
        f"/api/v1/products/{product.slug}/versions/",
        {"synthetic": [ids["synthetic"]], "train": ids["train"], "holdout": ids["holdout"], "submit": False},
        format="json",
    )
    assert created.status_code == 201, created.content
    answers = {"create (owner)": created.content}
    number = created.json()["number"]
    for who, user in (("owner", provider), ("staff", staff)):
        client = api_client_for(user)
        answers[f"version API ({who})"] = client.get(
            f"/api/v1/products/{product.slug}/versions/{number}/"
        ).content
        for role, upload_id in ids.items():
            answers[f"upload API {role} ({who})"] = client.get(f"/api/v1/uploads/{upload_id}/").content
        browser = Client()
        browser.force_login(user)
        pages = [
            f"/products/{product.slug}/?version={number}",
            f"/products/{product.slug}/versions/{number}/confirm/",
            f"/admin/catalog/productversion/{created.json()['id']}/change/",
            "/admin/catalog/upload/",
            *(f"/admin/catalog/upload/{upload_id}/change/" for upload_id in ids.values()),
        ]
        for page in pages:
            response = browser.get(page)
            expected = {200} if who == "staff" or "admin" not in page else {302}
            if who == "staff" and "/admin/catalog/upload/upl_" in page:
                # An attached upload may already be gone with its session: the admin then redirects.
                expected = {200, 302}
            assert response.status_code in expected, page
            answers[f"{page} ({who})"] = response.content

    leaks = [where for where, body in answers.items() if SECRET.encode() in body]
    assert leaks == []
    # The reference files still show their shape, and the synthetic table its preview.
    files = {item["role"]: item for item in created.json()["files"]}
    assert files["train"]["profile"] == {
        "format": "csv",
        "rows": 60,
        "columns": [
            {"name": "name", "dtype": "string", "sdtype": files["train"]["profile"]["columns"][0]["sdtype"]},
            {"name": "age", "dtype": "integer", "sdtype": "numerical"},
        ],
    }
    assert files["synthetic"]["profile"]["preview"][0]["name"] == "synthetic-20"
    # Nothing stored keeps the real rows' preview either.
    stored = VersionFile.objects.filter(role__in=["train", "holdout"])
    assert [item.profile["preview"] for item in stored] == [[], []]
    attached = Upload.objects.filter(pk__in=[ids["train"], ids["holdout"]])
    assert all("preview" not in upload.profile for upload in attached)
    assert hashlib.sha256(payloads["train"]).hexdigest() in {item.sha256 for item in stored}
