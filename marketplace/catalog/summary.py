"""The catalog's denormalized product fields (formats, sizes, lowest price, search text), kept in step with
the versions: every service that changes what buyers see of a product calls ``refresh_product_summary``.

It reads catalog rows only, so catalog, certification and generators all call it without importing each
other's services.
"""

from __future__ import annotations

from django.db.models import Min

from marketplace.catalog.models import FileRole, Product, VersionStatus
from marketplace.catalog.selectors import version_on_sale
from marketplace.core.page_cache import bump_catalog_version


def refresh_product_summary(product: Product) -> None:
    """Recompute the catalog's denormalized fields of ``product`` from the version buyers see: the latest
    one on sale, else the latest submitted one that has not failed."""
    latest = version_on_sale(product) or (
        product.versions.exclude(status__in=[VersionStatus.DRAFT, VersionStatus.FAILED])
        .order_by("-number")
        .first()
    )
    prices = product.licenses.aggregate(low=Min("price_minor"))
    currency = product.licenses.values_list("currency", flat=True).first() or ""
    columns: list[str] = []
    if latest is not None:
        synthetic = [f for f in latest.files.all() if f.role == FileRole.SYNTHETIC]
        product.formats = "," + ",".join(sorted({f.format for f in synthetic})) + ","
        product.row_count = sum(f.rows for f in synthetic)
        product.column_count = sum(f.column_count for f in synthetic)
        for item in synthetic:
            columns.extend(c["name"] for c in item.profile.get("columns", []))
        first_published = product.versions.exclude(submitted_at=None).aggregate(t=Min("submitted_at"))["t"]
        product.published_at = first_published
    else:
        product.formats, product.row_count, product.column_count, product.published_at = "", None, None, None
    product.price_from_minor = prices["low"]
    product.price_currency = currency
    product.search_text = " ".join(
        [product.title, product.summary, " ".join(product.tags), " ".join(columns), product.organization.name]
    ).lower()
    bump_catalog_version()
    Product.objects.filter(pk=product.pk).update(
        formats=product.formats,
        row_count=product.row_count,
        column_count=product.column_count,
        published_at=product.published_at,
        price_from_minor=product.price_from_minor,
        price_currency=product.price_currency,
        search_text=product.search_text,
    )
