"""A buyer's purchases: ``synthex buy`` and ``synthex entitlements``."""

from __future__ import annotations

from rich.table import Table

from synthex_client.api import ApiError, SynthexClient
from synthex_client.cli.common import EXIT_OK, CheckFailed, Context, UsageError, money


def _version_id(api: SynthexClient, reference: str) -> int:
    """The id of the version ``reference`` names: ``slug@number``, a bare slug (the version on sale) or an id."""
    if reference.isdigit():
        return int(reference)
    slug, _, number = reference.partition("@")
    if number:
        if not number.isdigit():
            raise UsageError(f"{reference!r}: write PRODUCT@NUMBER, e.g. adult-census@2.")
        try:
            return int(api.version(slug, int(number))["id"])
        except ApiError as error:
            if error.status != 404:
                raise
            raise ApiError(
                404, error.code, f"No version {number} of product {slug!r} on sale.", error.body
            ) from None
    try:
        product = api.product(slug)
    except ApiError as error:
        if error.status != 404:
            raise
        raise ApiError(404, error.code, f"No product {slug!r}.", error.body) from None
    on_sale = product.get("version_on_sale")
    if not on_sale:
        raise CheckFailed(f"Product {slug!r} has no version on sale yet.")
    return int(on_sale["id"])


def cmd_buy(context: Context) -> int:
    arguments = context.arguments
    with context.api(need_token=True) as api:
        order = api.create_order(_version_id(api, arguments.version), arguments.license)
        payment = order.get("payment") or {}
        if order["status"] == "pending" and payment.get("local_mode") and not arguments.no_confirm:
            order = api.confirm_order(order["id"], arguments.payment_method)
    paid = order["status"] == "paid"

    def human() -> None:
        context.out.print(
            f"Order {order['id']}: {order['status']}, {money(order['amount_minor'], order['currency'])} "
            f"for version {order['version']} of {order['product']} ({order['license']} license)"
        )
        if order.get("entitlement"):
            context.out.print(f"Entitlement {order['entitlement']}")
        if order.get("receipt_url"):
            context.out.print(f"Receipt: `synthex receipt verify {order['id']}`")
        if not paid and not (order.get("payment") or {}).get("local_mode"):
            context.out.print("Complete the payment on the order's web page (Stripe).")

    context.emit(order, human)
    if paid or (arguments.no_confirm and order["status"] == "pending"):
        return EXIT_OK
    if not (order.get("payment") or {}).get("local_mode"):
        return EXIT_OK
    raise CheckFailed(f"Order {order['id']} is {order['status']}: the payment did not complete.")


def cmd_entitlements(context: Context) -> int:
    with context.api(need_token=True) as api:
        items = api.entitlements()

    def human() -> None:
        table = Table()
        for heading in ("id", "product", "version", "license", "status", "granted"):
            table.add_column(heading)
        for item in items:
            table.add_row(
                item["id"],
                item["product"],
                str(item["version"]),
                item["license_code"],
                item["status"],
                str(item["granted_at"]),
            )
        context.out.print(table)

    context.emit(items, human)
    return EXIT_OK
