"""The ``synthex`` argument parser: every command, its flags and its handler."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from synthex_client import __version__, relational
from synthex_client.cli.account import cmd_login, cmd_logout
from synthex_client.cli.buying import cmd_buy, cmd_entitlements
from synthex_client.cli.common import Context
from synthex_client.cli.downloads import cmd_download, cmd_sample, condition_argument
from synthex_client.cli.products import (
    FILTERS,
    cmd_product_create,
    cmd_products_list,
    cmd_products_show,
    license_argument,
)
from synthex_client.cli.signed import (
    cmd_certificate_get,
    cmd_certificate_verify,
    cmd_ledger_head,
    cmd_ledger_verify,
    cmd_receipt_get,
    cmd_receipt_verify,
)
from synthex_client.cli.versions import cmd_jobs_watch, cmd_rules, cmd_submit, cmd_upload


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


def _command(
    parent: Any, name: str, handler: Callable[[Context], int] | None, text: str
) -> argparse.ArgumentParser:
    sub = parent.add_parser(name, help=text, description=text)
    _common(sub, top=False)
    if handler is not None:
        sub.set_defaults(handler=handler)
    return sub


def _group(commands: Any, name: str, text: str) -> Any:
    sub = commands.add_parser(name, help=text, description=text)
    return sub.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")


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

    _add_account(commands)
    _add_catalog(commands)
    _add_versions(commands)
    _add_certificates(commands)
    _add_buying(commands)
    _add_download(commands)
    _add_generators(commands)
    _add_ledger(commands)
    return parser


def _add_account(commands: Any) -> None:
    login = _command(
        commands,
        "login",
        cmd_login,
        "save the server URL and an API token (--token, else prompted; mode 0600)",
    )
    login.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    _command(commands, "logout", cmd_logout, "forget the saved token")


def _add_catalog(commands: Any) -> None:
    products = _group(commands, "products", "browse the catalog")
    for name, text in (("list", "list listed products"), ("search", "search products")):
        sub = _command(products, name, cmd_products_list, text)
        if name == "search":
            sub.add_argument("query", help="words to look for")
        for flag in FILTERS:
            sub.add_argument(f"--{flag.replace('_', '-')}", dest=flag)
        for flag in ("min_price", "max_price"):
            sub.add_argument(f"--{flag.replace('_', '-')}", dest=flag, metavar="PRICE", help="e.g. 12.50")
        sub.add_argument("--page", type=int, default=1)
    show = _command(products, "show", cmd_products_show, "one product, and a version with --version")
    show.add_argument("slug")
    show.add_argument("--version", type=int, help="also show this version number")

    product = _group(commands, "product", "manage your products")
    create = _command(product, "create", cmd_product_create, "create a product of your provider organization")
    create.add_argument("--title", required=True)
    create.add_argument("--summary", required=True)
    create.add_argument("--domain", required=True)
    create.add_argument("--kind", choices=("dataset", "generator"), default="dataset")
    create.add_argument(
        "--license", type=license_argument, action="append", required=True, metavar="CODE:PRICE[:CUR]",
        help="price in major units, e.g. standard:25.00:USD or 'standard:25 EUR' (repeatable; codes "
        "standard, commercial, research; USD when no currency is given)",
    )  # fmt: skip
    create.add_argument("--description", help="Markdown")
    create.add_argument("--tag", action="append", default=[])
    create.add_argument("--organization", help="provider organization slug (when you belong to several)")
    create.add_argument("--slug")


def _add_versions(commands: Any) -> None:
    upload = _command(commands, "upload", cmd_upload, "upload a new version (resumable, chunked)")
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

    rules = _command(
        commands, "rules", cmd_rules, "the rules certification will check on a version's real rows"
    )
    rules.add_argument("product", help="product slug")
    rules.add_argument("version", type=int, help="version number")
    submit = _command(commands, "submit", cmd_submit, "send a draft version to certification")
    submit.add_argument("product", help="product slug")
    submit.add_argument("version", type=int, help="version number")
    submit.add_argument("--target", help="target column for ML efficacy")
    submit.add_argument(
        "--rules",
        metavar="JSON|@FILE",
        help='plausibility choices: {"dismissed": [{"id": ..., "reason": ...}], "declared": ["a <= b"]}',
    )

    jobs = _group(commands, "jobs", "certification jobs")
    watch = _command(jobs, "watch", cmd_jobs_watch, "follow a job until it ends (exit 1 when it failed)")
    watch.add_argument("job_id", metavar="ID")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    watch.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds (exit 1)")


def _add_certificates(commands: Any) -> None:
    certificate = _group(commands, "certificate", "signed certificates")
    get = _command(certificate, "get", cmd_certificate_get, "download a certificate (exact signed bytes)")
    get.add_argument("certificate_id", metavar="ID")
    get.add_argument("-o", "--output", metavar="FILE")
    check = _command(certificate, "verify", cmd_certificate_verify, "verify a certificate offline")
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


def _add_buying(commands: Any) -> None:
    buy = _command(commands, "buy", cmd_buy, "buy a version (local mode: pays with a test card)")
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
    _command(commands, "entitlements", cmd_entitlements, "what you bought")

    receipt = _group(commands, "receipt", "signed receipts")
    receipt_get = _command(receipt, "get", cmd_receipt_get, "download an order's receipt")
    receipt_get.add_argument("order_id", metavar="ORDER")
    receipt_get.add_argument("-o", "--output", metavar="FILE")
    receipt_check = _command(receipt, "verify", cmd_receipt_verify, "verify a receipt's signature and proofs")
    receipt_check.add_argument("receipt", metavar="ORDER|RECEIPT.json")
    receipt_check.add_argument("--keys", metavar="KEYS.json")


def _add_download(commands: Any) -> None:
    download = _command(commands, "download", cmd_download, "download what you bought (resumes with Range)")
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


def _add_generators(commands: Any) -> None:
    fit_tables = _command(
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

    sample = _command(commands, "sample", cmd_sample, "draw rows from a generator you bought, as Parquet")
    sample.add_argument("entitlement", metavar="ENTITLEMENT", help="your entitlement to a generator version")
    sample.add_argument("--rows", type=int, help="rows to draw (within your quota)")
    sample.add_argument("--draw", metavar="DRAW_ID", help="fetch a draw already made (nothing drawn again)")
    sample.add_argument("--seed", type=int, help="same seed, same rows")
    sample.add_argument(
        "--condition",
        type=condition_argument,
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="repeatable",
    )
    sample.add_argument("-o", "--output", metavar="FILE", help="default DRAW_ID.parquet")
    sample.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    sample.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds (exit 1)")


def _add_ledger(commands: Any) -> None:
    ledger = _group(commands, "ledger", "the public ledger")
    _command(ledger, "head", cmd_ledger_head, "the latest signed tree head")
    audit = _command(ledger, "verify", cmd_ledger_verify, "check signed heads and consistency proofs")
    audit.add_argument("--keys", metavar="KEYS.json")
    audit.add_argument(
        "--last", type=int, default=0, metavar="N", help="only the N newest heads (default all)"
    )
    audit.add_argument("--forget", action="store_true", help="ignore the head verified last time")
