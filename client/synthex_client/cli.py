"""The ``synthex`` command line: providers upload and watch certification, buyers buy and verify.

Exit status (also in docs/cli.md):
  0  done; every check held
  1  a check failed (signature, hash, proof), a job failed, a payment did not complete
  2  usage error or unreadable local input (bad flag, missing file, not JSON)
  3  the API refused the request (HTTP 4xx): the message is the API's ``detail`` and ``code``
  4  the server failed (HTTP 5xx) or could not be reached
  130 interrupted (Ctrl-C); an interrupted upload resumes when the same command runs again
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from synthex_client import __version__, config, relational, uploads, verification
from synthex_client.api import ApiError, ClientError, ServerError, SynthexClient

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_SERVER = 4
EXIT_INTERRUPTED = 130

LEDGER_STATE_FILE = "ledger-heads.json"
JOB_DONE = ("succeeded", "failed")


class UsageError(Exception):
    """A problem with the command line or a local file; exit status 2."""


class CheckFailed(Exception):
    """A check, job or payment did not come out right; exit status 1 (the message says why)."""


@dataclass
class Context:
    arguments: argparse.Namespace
    out: Console
    err: Console

    @property
    def as_json(self) -> bool:
        return bool(self.arguments.json)

    def settings(self) -> config.Settings:
        return config.resolve(self.arguments.url, self.arguments.token)

    def api(self, *, need_token: bool = False) -> SynthexClient:
        settings = self.settings()
        if need_token and not settings.token:
            raise UsageError("Not logged in: run `synthex login`, or set SYNTHEX_TOKEN.")
        return SynthexClient(settings.url, settings.token)

    def emit(self, data: Any, human: Callable[[], None]) -> None:
        """``data`` as one JSON document on stdout with ``--json``, else the human rendering."""
        if self.as_json:
            print(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            human()

    def show_progress(self) -> bool:
        return not (self.as_json or self.arguments.quiet)


# --- helpers -------------------------------------------------------------------------------------------


def _existing_file(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise UsageError(f"{value}: no such file.")
    return path


def _read_json_file(value: str) -> Any:
    path = _existing_file(value)
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise UsageError(f"{value} is not readable JSON: {error}.") from None


def _keys_document(context: Context) -> dict[str, Any]:
    keys_file = getattr(context.arguments, "keys", None)
    if keys_file:
        return _read_json_file(keys_file)
    with context.api() as api:
        return api.keys_document()


# ISO 4217 currencies whose minor unit is not a hundredth (the API's amounts are integer minor units).
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND"), 0),
    **dict.fromkeys(("VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def _money(amount_minor: int | None, currency: str | None) -> str:
    """Integer minor units as people read them: ``_money(1250, "USD")`` → ``"12.50 USD"``."""
    if amount_minor is None or not currency:
        return "-"
    exponent = _EXPONENTS.get(currency.upper(), 2)
    return f"{Decimal(amount_minor).scaleb(-exponent):,.{exponent}f} {currency}"


def _to_minor(amount: str, currency: str) -> int:
    """``"12.50"`` of ``currency`` in integer minor units (1250); more decimals than the currency has are refused."""
    exponent = _EXPONENTS.get(currency, 2)
    try:
        value = Decimal(amount.replace(",", ""))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{amount!r} is not an amount (write e.g. 12.50)") from None
    minor = value.scaleb(exponent)
    if not value.is_finite() or value < 0 or minor != minor.to_integral_value():
        raise argparse.ArgumentTypeError(f"{amount!r} is not an amount of {currency} (write e.g. 12.50)")
    return int(minor)


def _report(context: Context, outcome: verification.Outcome, data: dict[str, Any]) -> int:
    payload = {"ok": outcome.ok, "failures": list(outcome.failures), "checked": list(outcome.notes), **data}

    def human() -> None:
        for note in outcome.notes:
            context.out.print(f"ok: {note}", style="green")
        for failure in outcome.failures:
            context.err.print(f"FAILED: {failure}", style="red")
        if outcome.ok:
            context.out.print("OK: every check holds", style="bold green")

    context.emit(payload, human)
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _transfer_progress(context: Context) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=context.err,
        disable=not context.show_progress(),
    )


# --- login ---------------------------------------------------------------------------------------------


def cmd_login(context: Context) -> int:
    arguments = context.arguments
    url = context.settings().url
    token = arguments.token
    if arguments.token_stdin:
        token = sys.stdin.readline().strip()
    elif not token:
        if not sys.stdin.isatty():
            raise UsageError("Give the token with --token or --token-stdin (stdin is not a terminal).")
        token = getpass.getpass(f"API token for {url} (from {url}/accounts/token/): ").strip()
    if not token:
        raise UsageError("The token is empty.")
    with SynthexClient(url, token) as api:
        api.search_products(page=1)  # an unknown token is refused with 401 on any endpoint
    path = config.save_login(url, token)
    context.emit(
        {"url": url, "config": str(path)},
        lambda: context.out.print(f"Logged in to {url}; the token is saved in {path} (mode 0600)."),
    )
    return EXIT_OK


def cmd_logout(context: Context) -> int:
    path = config.forget_login()
    context.emit({"config": str(path)}, lambda: context.out.print(f"The token is removed from {path}."))
    return EXIT_OK


# --- products ------------------------------------------------------------------------------------------

_FILTERS = ("domain", "kind", "license", "format", "provider", "min_quality", "privacy_grade", "ordering")


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
            _money(item.get("price_from_minor"), item.get("price_currency")),
        )
    context.out.print(table)


def cmd_products_list(context: Context) -> int:
    arguments = context.arguments
    filters = {name: getattr(arguments, name) for name in _FILTERS}
    # People write prices in major units; the API takes integer minor units (catalog currencies: 2 decimals).
    for name in ("min_price", "max_price"):
        if getattr(arguments, name, None) is not None:
            try:
                filters[name] = _to_minor(getattr(arguments, name), "USD")
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
            context.out.print(f"  license {item['code']}: {_money(item['price_minor'], item['currency'])}")
        if version is not None:
            _print_version(context, version)

    context.emit({"product": product, "version": version} if version else product, human)
    return EXIT_OK


def _print_version(context: Context, version: dict[str, Any]) -> None:
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


def _license(value: str) -> dict[str, Any]:
    """``CODE:PRICE[:CURRENCY]`` or ``CODE:PRICE CURRENCY`` with the price in major units (``standard:12.50``,
    ``standard:12.50:EUR``, ``"standard:12.50 EUR"``; USD when no currency is given) → the API's license."""
    code, _, rest = value.partition(":")
    amount, _, currency = rest.replace(":", " ").strip().partition(" ")
    currency = (currency.strip() or "USD").upper()
    if not code or not amount or len(currency) != 3 or not currency.isalpha():
        raise argparse.ArgumentTypeError(
            f"{value!r}: write CODE:PRICE or CODE:PRICE:CURRENCY, e.g. standard:25.00:USD"
        )
    return {"code": code, "price_minor": _to_minor(amount, currency), "currency": currency}


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
            context.out.print(f"  license {item['code']}: {_money(item['price_minor'], item['currency'])}")

    context.emit(product, human)
    return EXIT_OK


# --- upload --------------------------------------------------------------------------------------------


NO_REFERENCE = (
    "No reference train rows (--train): certification compares the synthetic tables with the real rows "
    "they imitate, so a version without them cannot be certified."
)


def _check_product_exists(api: SynthexClient, slug: str) -> None:
    """Refuse, naming the product, before any byte is sent to a product that is missing or not the user's."""
    try:
        api.product(slug)
    except ApiError as error:
        if error.status != 404:
            raise
        raise ApiError(
            404,
            error.code,
            f"No product {slug!r} you can upload to: `synthex products list` shows the catalog's slugs, "
            "`synthex product create` makes a product.",
            error.body,
        ) from None


def cmd_upload(context: Context) -> int:
    arguments = context.arguments
    try:
        table_set = relational.relational_paths(arguments)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if table_set is not None:
        return relational.cmd_upload_set(context, table_set)
    synthetic = [_existing_file(name) for name in arguments.files]
    reference = {
        role: _existing_file(getattr(arguments, role))
        for role in ("train", "holdout")
        if getattr(arguments, role)
    }
    metadata = None
    if arguments.metadata:
        try:
            metadata = json.loads(arguments.metadata)
        except ValueError:
            raise UsageError("--metadata must be a JSON object mapping columns to SDV sdtypes.") from None
    rules = _rule_choices(arguments.rules)
    if "train" not in reference:
        if not arguments.no_submit:
            raise UsageError(NO_REFERENCE + " Add --train (and --holdout), or --no-submit to keep a draft.")
        context.err.print(f"warning: {NO_REFERENCE} This draft cannot be submitted.", style="yellow")
    state = uploads.UploadState()
    results: dict[str, uploads.UploadResult] = {}
    with context.api(need_token=True) as api:
        _check_product_exists(api, arguments.product)
    with context.api(need_token=True) as api, _transfer_progress(context) as progress:
        for label, path in [*((str(p), p) for p in synthetic), *((role, p) for role, p in reference.items())]:
            task = progress.add_task(path.name, total=path.stat().st_size)

            def started(total: int, already: int, task: Any = task) -> None:
                progress.update(task, total=total, completed=already)

            def advanced(count: int, task: Any = task) -> None:
                progress.advance(task, count)

            results[label] = uploads.upload_file(
                api,
                path,
                state=state,
                chunk_size=arguments.chunk_size,
                on_start=started,
                on_progress=advanced,
                product=arguments.product,
            )
        # The server validates each file in a worker (parse, schema, statistics) before it can be attached;
        # attaching a refused one fails with the server's reason.
        for result in results.values():
            task = progress.add_task(f"checking {Path(result.path).name}", total=result.size)

            def checked(percent: int, task: Any = task, size: int = result.size) -> None:
                progress.update(task, completed=size * percent // 100)

            uploads.wait_until_checked(api, result.upload_id, checked)
        version = api.create_version(
            arguments.product,
            synthetic=[results[str(p)].upload_id for p in synthetic],
            train=results["train"].upload_id if "train" in results else None,
            holdout=results["holdout"].upload_id if "holdout" in results else None,
            target=arguments.target,
            metadata=metadata,
            changelog=arguments.changelog,
            submit=not arguments.no_submit,
            rules=rules,
        )
        uploads.forget_attached(state, list(results.values()), api.base_url)
    job = ((version.get("certification") or {}).get("job") or {}).get("id")
    files = [
        {
            "path": r.path,
            "upload_id": r.upload_id,
            "sha256": r.sha256,
            "size": r.size,
            "chunks": r.chunks,
            "sent_chunks": r.sent_chunks,
            "resumed_from_chunk": r.resumed_from,
            "seconds": round(r.seconds, 3),
        }
        for r in results.values()
    ]

    def human() -> None:
        for item in files:
            resumed = f", resumed at chunk {item['resumed_from_chunk']}" if item["resumed_from_chunk"] else ""
            context.out.print(f"{item['path']}: {item['size']:,} bytes, sha256 {item['sha256']}{resumed}")
        context.out.print(f"Version {version['number']} of {arguments.product}: {version['status']}")
        if job:
            context.out.print(f"Certification job {job}: follow it with `synthex jobs watch {job}`")

    context.emit({"version": version, "files": files, "job": job}, human)
    if job and arguments.watch:
        arguments.job_id = job
        return cmd_jobs_watch(context)
    return EXIT_OK


def _rule_choices(value: str | None) -> dict[str, Any] | None:
    """``--rules``: a JSON object, or @FILE holding one: {"dismissed": [{"id", "reason"}], "declared": [...]}."""
    if not value:
        return None
    text = _existing_file(value[1:]).read_text() if value.startswith("@") else value
    try:
        rules = json.loads(text)
    except ValueError:
        raise UsageError(
            '--rules must be JSON: {"dismissed": [{"id": ..., "reason": ...}], "declared": [...]}'
        ) from None
    if not isinstance(rules, dict):
        raise UsageError('--rules must be a JSON object with "dismissed" and/or "declared".')
    return rules


def cmd_rules(context: Context) -> int:
    arguments = context.arguments
    with context.api(need_token=True) as api:
        found = api.version_rules(arguments.product, arguments.version)
    dismissed = {item["id"]: item["reason"] for item in (found.get("choices") or {}).get("dismissed", [])}
    refused = {item["id"]: item["reason"] for item in found["sdv"]["not_enforced"]}

    def human() -> None:
        if not found["rules"]:
            context.out.print("No rule found on the reference rows.")
        for rule in found["rules"]:
            note = f"  [dismissed: {dismissed[rule['id']]}]" if rule["id"] in dismissed else ""
            context.out.print(
                f"{rule['statement']} — broken in {rule['holdout_violation_rate']:.0%} of real rows "
                f"({rule['support']:,} rows){note}"
            )
            context.out.print(
                f"  id {rule['id']}"
                + (f"; no SDV constraint: {refused[rule['id']]}" if rule["id"] in refused else "")
            )

    context.emit(found, human)
    return EXIT_OK


def cmd_submit(context: Context) -> int:
    arguments = context.arguments
    with context.api(need_token=True) as api:
        version = api.submit_version(
            arguments.product,
            arguments.version,
            rules=_rule_choices(arguments.rules),
            target=arguments.target,
        )
    context.emit(version, lambda: _print_version(context, version))
    return EXIT_OK


# --- jobs ----------------------------------------------------------------------------------------------


def cmd_jobs_watch(context: Context) -> int:
    arguments = context.arguments
    deadline = time.monotonic() + arguments.timeout if arguments.timeout else None
    with context.api(need_token=True) as api:
        job = api.job(arguments.job_id)  # a refusal is reported before any progress bar is drawn
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            console=context.err,
            disable=not context.show_progress(),
        ) as progress:
            task = progress.add_task(job["stage"], total=100, completed=job["progress"])
            while job["status"] not in JOB_DONE:
                if deadline is not None and time.monotonic() > deadline:
                    raise CheckFailed(
                        f"Job {job['id']} is still {job['status']} ({job['stage']}, {job['progress']}%) "
                        f"after {arguments.timeout:g} s."
                    )
                time.sleep(arguments.interval)
                job = api.job(arguments.job_id)
                progress.update(task, completed=job["progress"], description=job["stage"])
        certificate = None
        if job["status"] == "succeeded":
            version = api.version(job["product"], job["version"])
            certificate = ((version.get("certification") or {}).get("certificate") or {}).get("id")

    def human() -> None:
        if job["status"] == "succeeded":
            context.out.print(f"Job {job['id']} succeeded: version {job['version']} of {job['product']}.")
            if certificate:
                context.out.print(f"Certificate {certificate}: `synthex certificate get {certificate}`")
        else:
            context.err.print(f"Job {job['id']} failed: {job['error'] or job['stage']}", style="red")

    context.emit({**job, "certificate": certificate}, human)
    return EXIT_OK if job["status"] == "succeeded" else EXIT_FAILED


# --- certificates --------------------------------------------------------------------------------------


def cmd_certificate_get(context: Context) -> int:
    arguments = context.arguments
    with context.api() as api:
        body = api.certificate_bytes(arguments.certificate_id)
    if arguments.output:
        Path(arguments.output).write_bytes(body)
        context.emit(
            {"certificate": arguments.certificate_id, "output": arguments.output, "bytes": len(body)},
            lambda: context.out.print(f"Saved certificate {arguments.certificate_id} to {arguments.output}"),
        )
    else:
        sys.stdout.write(body.decode("utf-8") + "\n")
    return EXIT_OK


def cmd_certificate_verify(context: Context) -> int:
    arguments = context.arguments
    certificate = _read_json_file(arguments.certificate)
    if not isinstance(certificate, dict):
        raise UsageError(f"{arguments.certificate} is not a JSON object.")
    data = [_existing_file(name) for name in arguments.data]
    receipt = _read_json_file(arguments.receipt) if arguments.receipt else None
    if receipt is not None and not isinstance(receipt, dict):
        raise UsageError(f"{arguments.receipt} is not a JSON object.")

    def find_receipt(sha256: str) -> dict[str, Any] | None:
        """A copy bought here is no artifact: its signed receipt is looked up by the copy's own hash."""
        with context.api() as api:
            return api.delivery_receipt_by_hash(sha256)

    outcome = verification.verify_certificate(
        certificate, _keys_document(context), data, receipt=receipt, find_receipt=find_receipt
    )
    return _report(context, outcome, {"certificate": certificate.get("id"), **outcome.facts})


# --- buying --------------------------------------------------------------------------------------------


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
            f"Order {order['id']}: {order['status']}, {_money(order['amount_minor'], order['currency'])} "
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


def _receipt_document(context: Context, reference: str) -> dict[str, Any]:
    if Path(reference).expanduser().is_file():
        document = _read_json_file(reference)
    else:
        with context.api(need_token=True) as api:
            document = api.receipt(reference)
    if not isinstance(document, dict):
        raise UsageError(f"{reference} is not a receipt (a JSON object).")
    return document


def cmd_receipt_get(context: Context) -> int:
    arguments = context.arguments
    document = _receipt_document(context, arguments.order_id)
    text = json.dumps(document, indent=2, sort_keys=True)
    if arguments.output:
        Path(arguments.output).write_text(text + "\n", encoding="utf-8")
        context.emit(
            {"order": arguments.order_id, "output": arguments.output},
            lambda: context.out.print(f"Saved the receipt of {arguments.order_id} to {arguments.output}"),
        )
    else:
        print(text)
    return EXIT_OK


def cmd_receipt_verify(context: Context) -> int:
    document = _receipt_document(context, context.arguments.receipt)
    try:
        outcome = verification.verify_receipt(document, _keys_document(context))
    except ValueError as error:
        raise UsageError(str(error)) from None
    return _report(context, outcome, {})


# --- downloads -----------------------------------------------------------------------------------------


class _FileSink:
    """Receives a download into one reused buffer, appending each block to the file (ordinary buffered
    writes) and feeding it to the hash on the way; ``close`` flushes the file."""

    BLOCK = 1 << 20

    def __init__(
        self, handle: Any, digest: Any, new_digest: Callable[[], Any], advance: Callable[[int], None]
    ) -> None:
        self._handle = handle
        self.digest = digest
        self._new_digest = new_digest
        self._advance = advance
        self._view = memoryview(bytearray(self.BLOCK))

    def begin(self, resumed: bool) -> None:
        """The server ignored the Range (the body is the whole file): start the copy and its hash over."""
        if self._handle.tell() and not resumed:
            self._handle.truncate(0)
            self._handle.seek(0)
            self.digest = self._new_digest()

    def buffer(self) -> memoryview:
        return self._view

    def commit(self, count: int) -> None:
        block = self._view[:count]
        self._handle.write(block)
        self.digest.update(block)
        self._advance(count)

    def close(self) -> None:
        self._handle.flush()


def _transfer_check(link: dict[str, Any], sha256: bool = False) -> tuple[str, str, Callable[[], Any]]:
    """How a download is checked: (hash name, expected hex digest, new hasher).

    BLAKE3 when the link offers it: the server computed it with the copy's SHA-256 (the content address
    its signed receipt names), and checking it costs a fifth as much (10 GB/s here against 2 GB/s), which
    was most of a 1 GB download's time. ``--sha256``, and links from servers without it, check the SHA-256.
    The SHA-256 itself is checked against the signed delivery receipt by ``python -m
    marketplace.certification.verify ... --data FILE --receipt RECEIPT.json`` (docs/delivery.md).
    """
    if link.get("blake3") and not sha256:
        import blake3

        return "BLAKE3", link["blake3"], blake3.blake3
    return "SHA-256", link["sha256"], hashlib.sha256


def cmd_download(context: Context) -> int:
    """Download into ``FILE.<sha256 prefix>.part``, resuming a partial copy of the same content with an
    HTTP Range request, and keep it as FILE only when its hash is the one the link announced."""
    arguments = context.arguments
    with context.api(need_token=True) as api:
        if arguments.set is not None:
            link = api.set_link(arguments.entitlement, arguments.format, arguments.set or None)
        else:
            link = api.download_link(arguments.entitlement, arguments.format, arguments.file)
        output = Path(arguments.output or link["filename"])
        partial = output.with_name(f"{output.name}.{link['sha256'][:16]}.part")
        check, expected, new_digest = _transfer_check(link, arguments.sha256)
        digest = new_digest()
        offset = partial.stat().st_size if partial.exists() else 0
        if offset >= link["size_bytes"]:
            partial.unlink()
            offset = 0
        with partial.open("ab") as handle, _transfer_progress(context) as progress:
            task = progress.add_task(output.name, total=link["size_bytes"], completed=offset)
            if offset:
                with partial.open("rb") as existing:
                    while block := existing.read(1 << 20):
                        digest.update(block)

            sink = _FileSink(handle, digest, new_digest, lambda size: progress.advance(task, size))
            try:
                written, resumed = api.fetch(link["url"], sink, offset=offset, etag=f'"{link["sha256"]}"')
            finally:
                sink.close()
            digest = sink.digest
        if offset and not resumed:
            offset = 0
    actual = digest.hexdigest()
    if actual != expected:
        partial.unlink(missing_ok=True)
        raise CheckFailed(f"{output} arrived with {check} {actual}, not {expected}; download it again.")
    partial.replace(output)
    result = {
        "output": str(output),
        "sha256": link["sha256"],
        "checked_with": check.lower().replace("-", ""),
        "bytes": link["size_bytes"],
        "resumed_from_byte": offset,
        "sent_bytes": written,
        "delivery": link["delivery"],
        "receipt_url": link.get("receipt_url"),
    }
    context.emit(
        result,
        lambda: context.out.print(
            f"{output}: {link['size_bytes']:,} bytes, SHA-256 {link['sha256']} ({check} checked)"
            + (f" (resumed at byte {offset:,})" if offset else "")
        ),
    )
    return EXIT_OK


# --- generators ----------------------------------------------------------------------------------------


def _condition(value: str) -> tuple[str, Any]:
    column, separator, raw = value.partition("=")
    if not separator or not column:
        raise argparse.ArgumentTypeError(f"{value!r}: write COLUMN=VALUE")
    try:
        return column, json.loads(raw)
    except ValueError:
        return column, raw


def _follow_draw(context: Context, api: Any, entitlement: str, draw: dict[str, Any]) -> dict[str, Any]:
    """Poll a draw until it is done, with a progress bar; the finished draw."""
    arguments = context.arguments
    deadline = time.monotonic() + arguments.timeout if arguments.timeout else None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        console=context.err,
        disable=not context.show_progress(),
    ) as progress:
        task = progress.add_task(f"draw {draw['id']}", total=100, completed=draw["progress"])
        while draw["status"] not in JOB_DONE:
            if deadline is not None and time.monotonic() > deadline:
                raise CheckFailed(
                    f"Draw {draw['id']} is still {draw['status']} after {arguments.timeout:g} s."
                )
            time.sleep(arguments.interval)
            draw = api.sample_draw(entitlement, draw["id"])
            progress.update(task, completed=draw["progress"])
    return draw


def cmd_sample(context: Context) -> int:
    """Draw rows (or, with ``--draw``, fetch a draw already made: nothing is drawn or counted again), then
    download the buyer's copy of it and check the copy's own hash, which its download link announces: the
    copy is fingerprinted, so it is not the draw file's ``sha256``."""
    arguments = context.arguments
    entitlement = arguments.entitlement
    if (arguments.rows is None) == (arguments.draw is None):
        raise UsageError("Give --rows to draw new rows, or --draw DRAW_ID to fetch a draw again.")
    with context.api(need_token=True) as api:
        if arguments.draw:
            draw = api.sample_draw(entitlement, arguments.draw)
        else:
            draw = api.request_sample(
                entitlement, arguments.rows, arguments.seed, dict(arguments.condition) or None
            )
        draw = _follow_draw(context, api, entitlement, draw)
        if draw["status"] == "failed":
            raise CheckFailed(
                f"Draw {draw['id']} failed: {draw['error'] or draw['error_code']} (nothing was taken from your quota)"
            )
        link = api.download_link(entitlement, "parquet", draw=draw["id"])
        output = Path(arguments.output or link.get("filename") or f"{draw['id']}.parquet")
        partial = output.with_name(output.name + ".part")
        check, expected, new_digest = _transfer_check(link)
        with partial.open("wb") as handle, _transfer_progress(context) as progress:
            task = progress.add_task(output.name, total=link["size_bytes"])
            sink = _FileSink(handle, new_digest(), new_digest, lambda size: progress.advance(task, size))
            try:
                written, _ = api.fetch(link["url"], sink)
            finally:
                sink.close()
    actual = sink.digest.hexdigest()
    if actual != expected:
        partial.unlink(missing_ok=True)
        raise CheckFailed(
            f"The copy of draw {draw['id']} arrived with {check} {actual}, not {expected}. The draw is kept: "
            f"fetch it again with `synthex sample {entitlement} --draw {draw['id']}` (no rows drawn again)."
        )
    partial.replace(output)
    result = {
        **draw,
        "output": str(output),
        "bytes": written,
        "copy_sha256": link["sha256"],
        "checked_with": check.lower().replace("-", ""),
        "delivery": link["delivery"],
        "rows_delivered": link["rows"],
    }
    context.emit(
        result,
        lambda: context.out.print(
            f"Draw {draw['id']}: {link['rows']:,} of {draw['rows']:,} rows in {output} ({written:,} bytes, "
            f"your copy's SHA-256 {link['sha256']}, {check} checked)"
        ),
    )
    return EXIT_OK


# --- ledger --------------------------------------------------------------------------------------------


def cmd_ledger_head(context: Context) -> int:
    with context.api() as api:
        head = api.ledger_head()
    context.emit(
        head, lambda: context.out.print(f"{head['size']} entries, root {head['root']}\n{head['checkpoint']}")
    )
    return EXIT_OK


def cmd_ledger_verify(context: Context) -> int:
    arguments = context.arguments
    state_file = config.state_path(LEDGER_STATE_FILE)
    remembered_heads = config.read_json(state_file)
    keys_document = _keys_document(context)
    with context.api() as api:
        key = api.base_url
        remembered = None if arguments.forget else remembered_heads.get(key)
        outcome = verification.verify_heads(api, keys_document, remembered=remembered, last=arguments.last)
    if outcome.ok and outcome.facts.get("checkpoint"):
        remembered_heads[key] = outcome.facts["checkpoint"]
        config.write_private_json(state_file, remembered_heads)
    facts = {name: value for name, value in outcome.facts.items() if name != "checkpoint"}
    return _report(context, outcome, facts)


# --- the parser ----------------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--url", default=default, help="server root (else $SYNTHEX_URL, else the saved login)"
    )
    parser.add_argument(
        "--token", default=default, help="API token (else $SYNTHEX_TOKEN, else the saved login)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print JSON for scripts",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="no progress bars",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthex",
        description="Synthex from the command line: products, uploads, certificates, buying, receipts, ledger.",
        epilog="Exit status: 0 ok, 1 a check/job/payment failed, 2 usage, 3 API refused (4xx), "
        "4 server failed or unreachable, 130 interrupted. See docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"synthex {__version__}")
    _common(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        parent: Any, name: str, handler: Callable[[Context], int] | None, text: str
    ) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=text, description=text)
        _common(sub, top=False)
        if handler is not None:
            sub.set_defaults(handler=handler)
        return sub

    def group(name: str, text: str) -> Any:
        sub = commands.add_parser(name, help=text, description=text)
        return sub.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

    login = command(
        commands,
        "login",
        cmd_login,
        "save the server URL and an API token (--token, else prompted; mode 0600)",
    )
    login.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    command(commands, "logout", cmd_logout, "forget the saved token")

    products = group("products", "browse the catalog")
    for name, text in (("list", "list listed products"), ("search", "search products")):
        sub = command(products, name, cmd_products_list, text)
        if name == "search":
            sub.add_argument("query", help="words to look for")
        for flag in _FILTERS:
            sub.add_argument(f"--{flag.replace('_', '-')}", dest=flag)
        for flag in ("min_price", "max_price"):
            sub.add_argument(f"--{flag.replace('_', '-')}", dest=flag, metavar="PRICE", help="e.g. 12.50")
        sub.add_argument("--page", type=int, default=1)
    show = command(products, "show", cmd_products_show, "one product, and a version with --version")
    show.add_argument("slug")
    show.add_argument("--version", type=int, help="also show this version number")

    product = group("product", "manage your products")
    create = command(product, "create", cmd_product_create, "create a product of your provider organization")
    create.add_argument("--title", required=True)
    create.add_argument("--summary", required=True)
    create.add_argument("--domain", required=True)
    create.add_argument("--kind", choices=("dataset", "generator"), default="dataset")
    create.add_argument(
        "--license", type=_license, action="append", required=True, metavar="CODE:PRICE[:CUR]",
        help="price in major units, e.g. standard:25.00:USD or 'standard:25 EUR' (repeatable; codes "
        "standard, commercial, research; USD when no currency is given)",
    )  # fmt: skip
    create.add_argument("--description", help="Markdown")
    create.add_argument("--tag", action="append", default=[])
    create.add_argument("--organization", help="provider organization slug (when you belong to several)")
    create.add_argument("--slug")

    upload = command(commands, "upload", cmd_upload, "upload a new version (resumable, chunked)")
    upload.add_argument("product", help="product slug")
    upload.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="synthetic tables (CSV, Parquet, JSON Lines), or a folder holding a set of related tables "
        "(synthetic/, train/, holdout/, metadata.json)",
    )
    upload.add_argument("--train", help="private reference rows the synthetic data was made from")
    upload.add_argument("--holdout", help="private real rows kept out of training")
    upload.add_argument("--target", help="target column for ML efficacy")
    upload.add_argument(
        "--metadata", help='JSON: column -> SDV sdtype corrections, e.g. {"zip": "categorical"}'
    )
    upload.add_argument("--changelog")
    upload.add_argument(
        "--rules",
        metavar="JSON|@FILE",
        help='plausibility choices: {"dismissed": [{"id": ..., "reason": ...}], "declared": ["a <= b"]}',
    )
    upload.add_argument("--no-submit", action="store_true", help="keep a draft: do not send to certification")
    upload.add_argument("--watch", action="store_true", help="then follow the certification job")
    upload.add_argument("--chunk-size", type=int, help="bytes per chunk (server default 8 MiB)")
    upload.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    upload.add_argument("--timeout", type=float, default=0.0, help=argparse.SUPPRESS)

    rules = command(
        commands, "rules", cmd_rules, "the rules certification will check on a version's real rows"
    )
    rules.add_argument("product", help="product slug")
    rules.add_argument("version", type=int, help="version number")
    submit = command(commands, "submit", cmd_submit, "send a draft version to certification")
    submit.add_argument("product", help="product slug")
    submit.add_argument("version", type=int, help="version number")
    submit.add_argument("--target", help="target column for ML efficacy")
    submit.add_argument(
        "--rules",
        metavar="JSON|@FILE",
        help='plausibility choices: {"dismissed": [{"id": ..., "reason": ...}], "declared": ["a <= b"]}',
    )

    jobs = group("jobs", "certification jobs")
    watch = command(jobs, "watch", cmd_jobs_watch, "follow a job until it ends (exit 1 when it failed)")
    watch.add_argument("job_id", metavar="ID")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    watch.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds (exit 1)")

    certificate = group("certificate", "signed certificates")
    get = command(certificate, "get", cmd_certificate_get, "download a certificate (exact signed bytes)")
    get.add_argument("certificate_id", metavar="ID")
    get.add_argument("-o", "--output", metavar="FILE")
    check = command(certificate, "verify", cmd_certificate_verify, "verify a certificate offline")
    check.add_argument("certificate", metavar="CERT.json")
    check.add_argument(
        "--data", action="append", default=[], metavar="FILE", help="a certified file (repeatable)"
    )
    check.add_argument(
        "--keys", metavar="KEYS.json", help="published keys file (else fetched from the server)"
    )
    check.add_argument(
        "--receipt",
        metavar="RECEIPT.json",
        help="a delivery receipt, to check a copy offline (else looked up on the server by the copy's hash)",
    )

    buy = command(commands, "buy", cmd_buy, "buy a version (local mode: pays with a test card)")
    buy.add_argument(
        "version",
        metavar="PRODUCT[@VERSION]",
        help="product-slug@number (e.g. adult-census@2), a product slug for the version on sale, "
        "or the version's numeric id",
    )
    buy.add_argument("--license", required=True, help="standard, commercial or research")
    buy.add_argument(
        "--payment-method", default="pm_card_visa", help="local mode test card (default pm_card_visa)"
    )
    buy.add_argument("--no-confirm", action="store_true", help="only open the order")
    command(commands, "entitlements", cmd_entitlements, "what you bought")

    receipt = group("receipt", "signed receipts")
    receipt_get = command(receipt, "get", cmd_receipt_get, "download an order's receipt")
    receipt_get.add_argument("order_id", metavar="ORDER")
    receipt_get.add_argument("-o", "--output", metavar="FILE")
    receipt_check = command(receipt, "verify", cmd_receipt_verify, "verify a receipt's signature and proofs")
    receipt_check.add_argument("receipt", metavar="ORDER|RECEIPT.json")
    receipt_check.add_argument("--keys", metavar="KEYS.json")

    download = command(commands, "download", cmd_download, "download what you bought (resumes with Range)")
    download.add_argument("entitlement", metavar="ENTITLEMENT")
    download.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="parquet")
    download.add_argument("--file", type=int, help="which file of the version (its id), when it has several")
    download.add_argument(
        "--set",
        nargs="?",
        const=0,
        type=int,
        metavar="VERSION",
        help="every table of a relational version as one zip (default: the entitlement's own version)",
    )
    download.add_argument("-o", "--output", metavar="FILE", help="default: the name the server gives")
    download.add_argument(
        "--sha256",
        action="store_true",
        help="check the transfer with the SHA-256 (the hash the receipt signs) instead of the faster BLAKE3",
    )

    fit_tables = command(
        commands, "fit-tables", relational.cmd_fit_tables, "fit SDV's HMA on related tables (a generator)"
    )
    fit_tables.add_argument("product", help="generator product slug")
    fit_tables.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="one real table per file, or a folder of them (metadata.json)",
    )
    fit_tables.add_argument("--metadata", metavar="JSON|@FILE", help="SDV multi-table metadata")
    fit_tables.add_argument(
        "--row-quotas", metavar="JSON", help='entity rows per license, {"standard": 5000}'
    )
    fit_tables.add_argument("--watch", action="store_true", help="then follow the fit and certification job")
    fit_tables.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    fit_tables.add_argument("--timeout", type=float, default=0.0, help=argparse.SUPPRESS)

    sample = command(commands, "sample", cmd_sample, "draw rows from a generator you bought, as Parquet")
    sample.add_argument("entitlement", metavar="ENTITLEMENT", help="your entitlement to a generator version")
    sample.add_argument("--rows", type=int, help="rows to draw (within your quota)")
    sample.add_argument("--draw", metavar="DRAW_ID", help="fetch a draw already made (nothing drawn again)")
    sample.add_argument("--seed", type=int, help="same seed, same rows")
    sample.add_argument(
        "--condition", type=_condition, action="append", default=[], metavar="COLUMN=VALUE", help="repeatable"
    )
    sample.add_argument("-o", "--output", metavar="FILE", help="default DRAW_ID.parquet")
    sample.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    sample.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds (exit 1)")

    ledger = group("ledger", "the public ledger")
    command(ledger, "head", cmd_ledger_head, "the latest signed tree head")
    audit = command(ledger, "verify", cmd_ledger_verify, "check signed heads and consistency proofs")
    audit.add_argument("--keys", metavar="KEYS.json")
    audit.add_argument(
        "--last", type=int, default=0, metavar="N", help="only the N newest heads (default all)"
    )
    audit.add_argument("--forget", action="store_true", help="ignore the head verified last time")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (module docstring)."""
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_request:
        return EXIT_OK if exit_request.code in (0, None) else EXIT_USAGE
    terminal = sys.stdout.isatty()
    context = Context(
        arguments,
        # Server text (titles, error details) may hold brackets: no console markup, styles passed explicitly.
        Console(highlight=False, markup=False, soft_wrap=not terminal, width=None if terminal else 160),
        Console(stderr=True, highlight=False, markup=False, soft_wrap=True),
    )
    try:
        return int(arguments.handler(context))
    except UsageError as error:
        return _fail(context, EXIT_USAGE, "usage", str(error))
    except CheckFailed as error:
        return _fail(context, EXIT_FAILED, "failed", str(error))
    except uploads.UploadFailed as error:
        return _fail(context, EXIT_FAILED, "upload_failed", str(error))
    except ApiError as error:
        return _fail(context, EXIT_API, error.code, error.detail, status=error.status)
    except ServerError as error:
        code = "server_error" if error.status else "unreachable"
        return _fail(context, EXIT_SERVER, code, error.detail, status=error.status or None)
    except ClientError as error:
        return _fail(context, EXIT_SERVER, "client_error", str(error))
    except KeyboardInterrupt:
        return _fail(
            context, EXIT_INTERRUPTED, "interrupted", "Interrupted; run the same command again to resume."
        )


def _fail(context: Context, exit_status: int, code: str, detail: str, *, status: int | None = None) -> int:
    """Say what went wrong on stderr (and as ``{"error": ...}`` on stdout with ``--json``)."""
    if context.as_json:
        print(
            json.dumps(
                {"error": {"code": code, "detail": detail, "http_status": status, "exit": exit_status}}
            )
        )
    suffix = f" (HTTP {status}, code {code})" if status else ""
    context.err.print(f"error: {detail}{suffix}", style="red")
    return exit_status
