from __future__ import annotations

import io
import pickle
import zipfile

import pandas as pd
import pytest
from django.core.files.storage import storages
from django.test import override_settings

from marketplace.catalog.models import Product, ProductVersion, VersionFile

pytestmark = pytest.mark.django_db

PRODUCT = {
    "title": "Synthetic Census",
    "summary": "Census-like synthetic people.",
    "domain": "census",
    "kind": "dataset",
    "tags": ["census", "Income Data"],
    "description": "# Hello\n<script>alert(1)</script>[x](javascript:alert(1))",
    "licenses": [{"code": "standard", "price_minor": 4900, "currency": "USD"}],
}


def stored_files() -> list[str]:
    names = []
    for alias in ("default", "reference"):
        storage = storages[alias]
        stack = [""]
        while stack:
            folder = stack.pop()
            dirs, files = storage.listdir(folder)
            stack.extend(f"{folder}/{d}".lstrip("/") for d in dirs)
            names.extend(f"{alias}:{folder}/{f}" for f in files)
    return names


def upload(client, slug, files, **fields):
    data = {**fields}
    for key, value in files.items():
        data[key] = value
    return client.post(f"/api/v1/products/{slug}/versions/", data, format="multipart")


def named(content: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def test_provider_creates_product_with_sanitized_markdown(provider, api_client_for):
    response = api_client_for(provider).post("/api/v1/products/", PRODUCT, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "synthetic-census"
    assert body["organization"] == provider.organization.slug
    assert body["tags"] == ["census", "income-data"]
    assert body["licenses"] == [
        {"code": "standard", "name": "Standard", "price_minor": 4900, "currency": "USD"}
    ]
    assert "<script" not in body["description_html"]
    assert "javascript:" not in body["description_html"]
    assert "<h1>Hello</h1>" in body["description_html"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"licenses": []}, 400, "empty"),
        ({"licenses": [{"code": "gratis", "price_minor": 1, "currency": "USD"}]}, 400, "invalid_choice"),
        ({"licenses": [{"code": "standard", "price_minor": -5, "currency": "USD"}]}, 400, "min_value"),
        ({"licenses": [{"code": "standard", "price_minor": 10.5, "currency": "USD"}]}, 400, "invalid"),
        ({"licenses": [{"code": "standard", "price_minor": 100, "currency": "usd"}]}, 400, "invalid"),
        ({"domain": "astrology"}, 400, "invalid_choice"),
        ({"title": ""}, 400, "blank"),
        ({"title": "!!!"}, 400, "bad_slug"),
    ],
)
def test_bad_product_input_is_a_clear_400_and_creates_nothing(provider, api_client_for, change, status, code):
    response = api_client_for(provider).post("/api/v1/products/", {**PRODUCT, **change}, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert Product.objects.count() == 0


def test_slug_clash_is_409(provider, api_client_for):
    client = api_client_for(provider)
    assert client.post("/api/v1/products/", PRODUCT, format="json").status_code == 201
    response = client.post("/api/v1/products/", PRODUCT, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "slug_taken"
    assert Product.objects.count() == 1


def test_buyer_without_provider_organization_cannot_create(buyer, api_client_for):
    response = api_client_for(buyer).post("/api/v1/products/", PRODUCT, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "not_a_provider"


def test_anonymous_cannot_create(api_client_for):
    response = api_client_for(None).post("/api/v1/products/", PRODUCT, format="json")
    assert response.status_code == 401
    assert Product.objects.count() == 0


def test_patch_updates_listing_and_prices(provider, api_client_for, product_factory):
    product = product_factory(provider, "Patchable")
    response = api_client_for(provider).patch(
        f"/api/v1/products/{product.slug}/",
        {"summary": "New summary", "licenses": [{"code": "research", "price_minor": 0, "currency": "USD"}]},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["summary"] == "New summary"
    assert [lic["code"] for lic in response.json()["licenses"]] == ["research"]


def test_non_member_cannot_patch(provider, buyer, api_client_for, product_factory):
    product = product_factory(provider, "Not yours")
    response = api_client_for(buyer).patch(
        f"/api/v1/products/{product.slug}/", {"title": "Mine"}, format="json"
    )
    assert response.status_code == 403
    product.refresh_from_db()
    assert product.title == "Not yours"


def test_upload_version_through_api_hashes_profiles_and_submits(
    provider, api_client_for, product_factory, small_tables
):
    product = product_factory(provider, "Uploadable")
    synthetic = small_tables["synthetic"].to_csv(index=False).encode()
    response = upload(
        api_client_for(provider),
        product.slug,
        {
            "synthetic": named(synthetic, "people.csv"),
            "train": named(small_tables["train"].to_csv(index=False).encode(), "train.csv"),
            "holdout": named(small_tables["holdout"].to_parquet(index=False), "holdout.parquet"),
        },
        target="class",
        metadata='{"age": "categorical"}',
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"] == 1
    assert body["status"] == "submitted"
    assert body["target_column"] == "class"
    assert body["sdv_metadata"]["columns"]["age"]["sdtype"] == "categorical"
    files = {f["role"]: f for f in body["files"]}
    import hashlib

    assert files["synthetic"]["sha256"] == hashlib.sha256(synthetic).hexdigest()
    assert files["synthetic"]["rows"] == 800
    assert files["holdout"]["format"] == "parquet"
    assert {c["name"] for c in files["synthetic"]["profile"]["columns"]} == set(
        small_tables["synthetic"].columns
    )
    product.refresh_from_db()
    assert product.published_at is not None
    assert product.row_count == 800
    assert "hours-per-week" in product.search_text


def _bad_csv_cases() -> list[tuple[str, bytes, str]]:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    parquet = frame.to_parquet(index=False)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("data.csv", "a,b\n1,2\n")
    return [
        ("empty.csv", b"", "empty_file"),
        ("lies.csv", parquet, "format_mismatch"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "ragged_rows"),
        ("latin.csv", "a,b\ncafé,1\n".encode("latin-1"), "undecodable"),
        ("nul.csv", b"a,b\n1,\x002\n", "nul_bytes"),
        ("long.csv", b"a,b\n" + b"x" * (10 * 1024 * 1024) + b",1\n", "line_too_long"),
        ("truncated.parquet", parquet[: len(parquet) // 2], "truncated_parquet"),
        ("broken.jsonl", b'{"a": 1}\n{"a": 2\n', "broken_jsonl"),
        ("dupes.csv", b"a,a\n1,2\n", "duplicate_columns"),
        ("blank.csv", b"a,\n1,2\n", "empty_column_name"),
        ("header_only.csv", b"a,b\n", "no_rows"),
        ("model.csv", pickle.dumps({"rows": [1, 2, 3]}), "disguised_binary"),
        ("archive.csv", archive.getvalue(), "disguised_binary"),
        ("program.csv", b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "disguised_binary"),
    ]


@pytest.mark.parametrize(("name", "content", "code"), _bad_csv_cases(), ids=[c[0] for c in _bad_csv_cases()])
def test_bad_file_is_refused_with_a_clear_message_and_leaves_nothing(
    provider, api_client_for, product_factory, name, content, code
):
    product = product_factory(provider, "Strict")
    before = stored_files()
    response = upload(api_client_for(provider), product.slug, {"synthetic": named(content, name)})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert name in response.json()["detail"]
    assert ProductVersion.objects.count() == 0
    assert VersionFile.objects.count() == 0
    assert stored_files() == before


def test_over_the_size_limit_is_413_and_leaves_nothing(provider, api_client_for, product_factory):
    product = product_factory(provider, "Small limit")
    with override_settings(SYNTHEX_MAX_UPLOAD_BYTES=1000):
        response = upload(
            api_client_for(provider), product.slug, {"synthetic": named(b"a,b\n" + b"1,2\n" * 600, "big.csv")}
        )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert ProductVersion.objects.count() == 0


def test_reference_columns_must_match_synthetic(provider, api_client_for, product_factory, small_tables):
    product = product_factory(provider, "Mismatch")
    before = stored_files()
    response = upload(
        api_client_for(provider),
        product.slug,
        {
            "synthetic": named(small_tables["synthetic"].to_csv(index=False).encode(), "s.csv"),
            "train": named(small_tables["train"].drop(columns=["sex"]).to_csv(index=False).encode(), "t.csv"),
        },
    )
    assert response.status_code == 400
    assert response.json()["code"] == "reference_columns_differ"
    assert "missing: sex" in response.json()["detail"]
    assert stored_files() == before


def test_unknown_target_is_refused(provider, api_client_for, product_factory, small_tables):
    product = product_factory(provider, "Target")
    response = upload(
        api_client_for(provider),
        product.slug,
        {"synthetic": named(small_tables["synthetic"].to_csv(index=False).encode(), "s.csv")},
        target="salary",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_target"
    assert ProductVersion.objects.count() == 0


def test_non_member_cannot_upload_to_someone_elses_product(provider, buyer, api_client_for, product_factory):
    product = product_factory(provider, "Guarded")
    before = stored_files()
    response = upload(api_client_for(buyer), product.slug, {"synthetic": named(b"a,b\n9,9\n", "s.csv")})
    assert response.status_code == 403
    assert ProductVersion.objects.count() == 0
    assert stored_files() == before


def test_upload_cut_off_mid_stream_is_refused_and_leaves_nothing(provider, product_factory):
    import json

    from django.core.handlers.wsgi import WSGIHandler
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, RequestFactory, encode_multipart

    from marketplace.accounts.services import api_token_for

    product = product_factory(provider, "Interrupted")
    before = stored_files()
    body = encode_multipart(BOUNDARY, {"synthetic": named(b"a,b\n" + b"7,8\n" * 5000, "s.csv")})
    environ = (
        RequestFactory()
        .generic(
            "POST",
            f"/api/v1/products/{product.slug}/versions/",
            b"",
            content_type=MULTIPART_CONTENT,
            HTTP_AUTHORIZATION=f"Token {api_token_for(provider)}",
        )
        .environ
    )
    # The client promised the whole body but the connection delivers only half of it.
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["CONTENT_TYPE"] = MULTIPART_CONTENT
    environ["wsgi.input"] = io.BytesIO(body[: len(body) // 2])
    statuses = []
    chunks = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    payload = json.loads(b"".join(chunks))
    assert statuses[0].startswith("400"), (statuses, payload)
    assert payload["code"] == "incomplete_upload"
    assert ProductVersion.objects.count() == 0
    assert stored_files() == before


def test_buyer_cannot_read_reference_files_by_guessing(
    provider, buyer, api_client_for, product_factory, version_factory
):
    product = product_factory(provider, "Private refs")
    version = version_factory(product, provider, submit=True)
    public = api_client_for(buyer).get(f"/api/v1/products/{product.slug}/versions/{version.number}/").json()
    assert {f["role"] for f in public["files"]} == {"synthetic"}
    owner = api_client_for(provider).get(f"/api/v1/products/{product.slug}/versions/{version.number}/").json()
    assert {f["role"] for f in owner["files"]} == {"synthetic", "train", "holdout"}
    anonymous = api_client_for(None).get(f"/api/v1/products/{product.slug}/versions/{version.number}/").json()
    assert {f["role"] for f in anonymous["files"]} == {"synthetic"}


def test_drafts_are_invisible_to_others(provider, buyer, api_client_for, product_factory, version_factory):
    product = product_factory(provider, "Drafty")
    version = version_factory(product, provider, submit=False)
    response = api_client_for(buyer).get(f"/api/v1/products/{product.slug}/versions/{version.number}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_submit_draft_with_corrections_and_not_twice(
    provider, api_client_for, product_factory, version_factory
):
    product = product_factory(provider, "Two step")
    version = version_factory(product, provider, submit=False)
    client = api_client_for(provider)
    url = f"/api/v1/products/{product.slug}/versions/{version.number}/submit/"
    bad = client.post(url, {"metadata": {"age": "planet"}}, format="json")
    assert bad.status_code == 400
    version.refresh_from_db()
    assert version.status == "draft"
    good = client.post(url, {"metadata": {"sex": "boolean"}, "target": "class"}, format="json")
    assert good.status_code == 200, good.content
    assert good.json()["sdv_metadata"]["columns"]["sex"]["sdtype"] == "boolean"
    again = client.post(url, {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "not_a_draft"


def test_openapi_schema_and_docs_are_served_without_cdn(client):
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/products/{slug}/versions/" in schema.content
    docs = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower()
    assert "https://" not in docs
