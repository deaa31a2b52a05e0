"""``synthex upload`` of a folder holding a set of related tables: detected keys, then certification."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relational"))
from relational_data import independent, metadata, randhie  # noqa: E402

from marketplace.catalog.models import ProductVersion  # noqa: E402
from marketplace.certification.engine.relational import split_by_entity  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def _write_set(folder, with_metadata: bool) -> None:
    train, holdout = split_by_entity(randhie(600), metadata(), holdout_share=0.3, seed=0)
    for role, tables in {"synthetic": independent(train), "train": train, "holdout": holdout}.items():
        (folder / role).mkdir(parents=True)
        for name, frame in tables.items():
            frame.to_csv(folder / role / f"{name}.csv", index=False)
    if with_metadata:
        (folder / "metadata.json").write_text(json.dumps(metadata()))


def test_upload_of_a_folder_makes_a_relational_draft(cli, provider, token_for, product_factory, tmp_path):
    product = product_factory(provider, "RAND set")
    _write_set(tmp_path / "set", with_metadata=False)
    result = cli("upload", product.slug, tmp_path / "set", "--no-submit", "--json", token=token_for(provider))
    assert result.code == 0, result.err
    body = result.json()
    assert sorted((f["role"], f["path"].rsplit("/", 1)[-1]) for f in body["files"]) == sorted(
        (role, f"{name}.csv")
        for role in ("synthetic", "train", "holdout")
        for name in ("plans", "persons", "years")
    )
    version = ProductVersion.objects.get(product=product)
    assert version.status == "draft"
    assert {r["child_table_name"] for r in version.sdv_metadata["relationships"]} == {"persons", "years"}


def test_upload_of_a_set_with_orphans_is_refused_naming_the_table(
    cli, provider, token_for, product_factory, tmp_path
):
    product = product_factory(provider, "RAND broken")
    _write_set(tmp_path / "set", with_metadata=True)
    years = tmp_path / "set" / "synthetic" / "years.csv"
    text = years.read_text().splitlines()
    fields = text[1].split(",")
    fields[1] = "-5"
    years.write_text("\n".join([text[0], ",".join(fields), *text[2:]]) + "\n")
    result = cli("upload", product.slug, tmp_path / "set", "--no-submit", "--json", token=token_for(provider))
    assert result.code == 3
    assert "years" in result.err and "orphans" in result.err
    assert not ProductVersion.objects.filter(product=product).exists()
