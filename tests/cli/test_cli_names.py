"""The CLI names what it cannot find and takes names people know (issue 17 #11): ``synthex upload`` to a
missing product names it, an upload without reference rows is refused before any byte is sent (or warned
about for a draft), and ``synthex buy`` takes ``product-slug@version``."""

from __future__ import annotations

import pytest

from exchange.orders.models import Order
from marketplace.catalog.models import ProductVersion, Upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_upload_to_a_missing_product_names_it_and_sends_nothing(
    cli, provider, token_for, small_tables, tmp_path
):
    synthetic, train = tmp_path / "people.csv", tmp_path / "train.csv"
    small_tables["synthetic"].to_csv(synthetic, index=False)
    small_tables["train"].to_csv(train, index=False)
    result = cli("upload", "no-such-product", synthetic, "--train", train, token=token_for(provider))
    assert result.code == 3
    assert "No product 'no-such-product' you can upload to" in result.err.replace("\n", " ")
    assert not Upload.objects.exists()


def test_upload_without_reference_rows_is_refused_before_sending(
    cli, provider, token_for, product_factory, small_tables, tmp_path
):
    product = product_factory(provider, "Referenceless")
    synthetic = tmp_path / "people.csv"
    small_tables["synthetic"].to_csv(synthetic, index=False)
    refused = cli("upload", product.slug, synthetic, token=token_for(provider))
    assert refused.code == 2
    assert "No reference train rows (--train)" in refused.err.replace("\n", " ")
    assert not Upload.objects.exists() and not ProductVersion.objects.exists()
    draft = cli("upload", product.slug, synthetic, "--no-submit", "--json", token=token_for(provider))
    assert draft.code == 0, draft.err
    assert "warning: No reference train rows" in draft.err.replace("\n", " ")
    assert draft.json()["version"]["status"] == "draft"


def test_buy_takes_a_product_slug_and_version_number(
    cli, local_payments, provider, buyer, user_factory, token_for, certified_factory
):
    version, _ = certified_factory(provider)
    slug = version.product.slug
    bought = cli("buy", f"{slug}@{version.number}", "--license", "standard", "--json", token=token_for(buyer))
    assert bought.code == 0, bought.err + bought.out
    assert Order.objects.get(pk=bought.json()["id"]).version_id == version.pk
    missing = cli("buy", f"{slug}@9", "--license", "standard", token=token_for(buyer))
    assert missing.code == 3
    assert f"No version 9 of product '{slug}' on sale." in missing.err.replace("\n", " ")
    # A bare slug buys the version on sale.
    other = user_factory("second-buyer")
    on_sale = cli("buy", slug, "--license", "standard", "--json", token=token_for(other))
    assert on_sale.code == 0, on_sale.err
    assert Order.objects.get(pk=on_sale.json()["id"]).version_id == version.pk
