"""``synthex products`` (browse the catalog) and ``synthex product create``."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from synthex_client.cli.common import EXIT_OK, Context, UsageError, money, to_minor

FILTERS = ("domain", "kind", "license", "format", "provider", "min_quality", "privacy_grade", "ordering")


def _product_table(context: Context, products: list[dict[str, Any]], total: int | None) -> None:
    table = Table(title=None if total is None else f"{total} products", show_lines=False)
    for heading in ("slug", "title", "kind", "domain", "rows", "quality", "privacy", "from"):
        table.add_column(heading)
    for item in products:
        table.add_row(
            item["slug"],
            item["title"],
            item["kind"],
            item["domain"],
            "-" if item.get("row_count") is None else f"{item['row_count']:,}",
            f"{item.get('quality_grade') or '-'} {item.get('quality_score') or ''}".strip(),
            item.get("privacy_grade") or "-",
            money(item.get("price_from_minor"), item.get("price_currency")),
        )
    context.out.print(table)


def cmd_products_list(context: Context) -> int:
    arguments = context.arguments
    filters = {name: getattr(arguments, name) for name in FILTERS}
    # People write prices in major units; the API takes integer minor units (catalog currencies: 2 decimals).
    for name in ("min_price", "max_price"):
        if getattr(arguments, name, None) is not None:
            try:
                filters[name] = to_minor(getattr(arguments, name), "USD")
            except argparse.ArgumentTypeError as error:
                raise UsageError(f"--{name.replace('_', '-')}: {error}") from None
    with context.api() as api:
        page = api.search_products(q=getattr(arguments, "query", None), page=arguments.page, **filters)
    context.emit(page, lambda: _product_table(context, page["results"], page.get("count")))
    return EXIT_OK


def cmd_products_show(context: Context) -> int:
    arguments = context.arguments
    with context.api() as api:
        product = api.product(arguments.slug)
        version = api.version(arguments.slug, arguments.version) if arguments.version else None

    def human() -> None:
        context.out.print(f"{product['title']} ({product['slug']}) by {product['provider']}", style="bold")
        context.out.print(product["summary"])
        context.out.print(
            f"kind {product['kind']}, domain {product['domain']}, formats {', '.join(product['formats']) or '-'}, "
            f"quality {product.get('quality_grade') or '-'}, privacy {product.get('privacy_grade') or '-'}"
        )
        for item in product["licenses"]:
            context.out.print(f"  license {item['code']}: {money(item['price_minor'], item['currency'])}")
        if version is not None:
            print_version(context, version)

    context.emit({"product": product, "version": version} if version else product, human)
    return EXIT_OK


def print_version(context: Context, version: dict[str, Any]) -> None:
    context.out.print(f"version {version['number']}: {version['status']}")
    for item in version["files"]:
        context.out.print(
            f"  {item['role']:9} {item['original_filename']} {item['size_bytes']:,} bytes sha256 {item['sha256']}"
        )
    certification = version.get("certification") or {}
    if certification.get("job"):
        job = certification["job"]
        context.out.print(f"  job {job['id']}: {job['status']} ({job['stage']}, {job['progress']}%)")
    if certification.get("certificate"):
        certificate = certification["certificate"]
        context.out.print(
            f"  certificate {certificate['id']}: quality {certificate['quality_grade']}, "
            f"plausibility {certificate.get('plausibility_grade') or '-'}, "
            f"privacy {certificate['privacy_grade']}{' (revoked)' if certificate['revoked'] else ''}"
        )


def license_argument(value: str) -> dict[str, Any]:
    """``CODE:PRICE[:CURRENCY]`` or ``CODE:PRICE CURRENCY`` with the price in major units (``standard:12.50``,
    ``standard:12.50:EUR``, ``"standard:12.50 EUR"``; USD when no currency is given) → the API's license."""
    code, _, rest = value.partition(":")
    amount, _, currency = rest.replace(":", " ").strip().partition(" ")
    currency = (currency.strip() or "USD").upper()
    if not code or not amount or len(currency) != 3 or not currency.isalpha():
        raise argparse.ArgumentTypeError(
            f"{value!r}: write CODE:PRICE or CODE:PRICE:CURRENCY, e.g. standard:25.00:USD"
        )
    return {"code": code, "price_minor": to_minor(amount, currency), "currency": currency}


def cmd_product_create(context: Context) -> int:
    arguments = context.arguments
    fields: dict[str, Any] = {
        "title": arguments.title,
        "summary": arguments.summary,
        "domain": arguments.domain,
        "kind": arguments.kind,
        "licenses": arguments.license,
        "tags": arguments.tag,
    }
    for name in ("description", "organization", "slug"):
        if getattr(arguments, name):
            fields[name] = getattr(arguments, name)
    with context.api(need_token=True) as api:
        product = api.create_product(fields)

    def human() -> None:
        context.out.print(f"Created product {product['slug']}: {product['title']}")
        for item in product.get("licenses", []):
            context.out.print(f"  license {item['code']}: {money(item['price_minor'], item['currency'])}")

    context.emit(product, human)
    return EXIT_OK
