"""The confirm page of a relational draft: detected keys shown, corrected, checked, submitted."""

from __future__ import annotations

import pytest
from relational_data import independent, metadata, randhie

from marketplace.catalog import relational
from marketplace.catalog.models import ProductVersion
from marketplace.catalog.uploads import local_upload
from marketplace.certification.engine.relational import split_by_entity

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(provider, product_factory, tmp_path):
    train, holdout = split_by_entity(randhie(500), metadata(), holdout_share=0.3, seed=0)
    files: dict[str, list] = {}
    for role, tables in {"synthetic": independent(train), "train": train, "holdout": holdout}.items():
        (tmp_path / role).mkdir()
        for name, frame in tables.items():
            frame.to_csv(tmp_path / role / f"{name}.csv", index=False)
            files.setdefault(role, []).append(
                local_upload(tmp_path / role / f"{name}.csv", name=f"{name}.csv")
            )
    product = product_factory(provider, "RAND web")
    return relational.create_relational_version(product, user=provider, **files)


def test_the_confirm_page_shows_tables_and_keys_and_refuses_a_broken_key(client, provider, draft):
    client.force_login(provider)
    url = f"/products/{draft.product.slug}/versions/{draft.number}/confirm/"
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    for name in ("plans", "persons", "years"):
        assert f'data-table="{name}"' in text
    assert "person_id" in text
    form = {
        "keep_relationship": ["0", "1"],
        "add_parent": "plans",
        "add_child": "years",
        "add_column": "year",
    }
    refused = client.post(url, form)
    assert refused.status_code == 400
    assert "years" in refused.content.decode() and "orphans" in refused.content.decode()
    assert ProductVersion.objects.get(pk=draft.pk).status == "draft"
    assert ProductVersion.objects.get(pk=draft.pk).sdv_metadata == draft.sdv_metadata


def test_confirming_the_keys_submits_the_version(client, provider, draft, django_capture_on_commit_callbacks):
    client.force_login(provider)
    url = f"/products/{draft.product.slug}/versions/{draft.number}/confirm/"
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            url, {"keep_relationship": ["0", "1"], "sdtype__persons__hlthg": "categorical"}
        )
    assert response.status_code == 302
    version = ProductVersion.objects.get(pk=draft.pk)
    assert version.status == "submitted"
    assert version.sdv_metadata["tables"]["persons"]["columns"]["hlthg"] == {"sdtype": "categorical"}
