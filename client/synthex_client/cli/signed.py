"""Signed documents, checked offline: ``synthex certificate``, ``receipt`` and ``ledger``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from synthex_client import config, verification
from synthex_client.cli.common import (
    EXIT_OK,
    LEDGER_STATE_FILE,
    Context,
    UsageError,
    existing_file,
    load_keys_document,
    read_json_file,
    report,
)


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
    certificate = read_json_file(arguments.certificate)
    if not isinstance(certificate, dict):
        raise UsageError(f"{arguments.certificate} is not a JSON object.")
    data = [existing_file(name) for name in arguments.data]
    receipt = read_json_file(arguments.receipt) if arguments.receipt else None
    if receipt is not None and not isinstance(receipt, dict):
        raise UsageError(f"{arguments.receipt} is not a JSON object.")

    def find_receipt(sha256: str) -> dict[str, Any] | None:
        """A copy bought here is no artifact: its signed receipt is looked up by the copy's own hash."""
        with context.api() as api:
            return api.delivery_receipt_by_hash(sha256)

    outcome = verification.verify_certificate(
        certificate, load_keys_document(context), data, receipt=receipt, find_receipt=find_receipt
    )
    return report(context, outcome, {"certificate": certificate.get("id"), **outcome.facts})


def _receipt_document(context: Context, reference: str) -> dict[str, Any]:
    if Path(reference).expanduser().is_file():
        document = read_json_file(reference)
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
        outcome = verification.verify_receipt(document, load_keys_document(context))
    except ValueError as error:
        raise UsageError(str(error)) from None
    return report(context, outcome, {})


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
    keys_document = load_keys_document(context)
    with context.api() as api:
        key = api.base_url
        remembered = None if arguments.forget else remembered_heads.get(key)
        outcome = verification.verify_heads(api, keys_document, remembered=remembered, last=arguments.last)
    if outcome.ok and outcome.facts.get("checkpoint"):
        remembered_heads[key] = outcome.facts["checkpoint"]
        config.write_private_json(state_file, remembered_heads)
    facts = {name: value for name, value in outcome.facts.items() if name != "checkpoint"}
    return report(context, outcome, facts)
