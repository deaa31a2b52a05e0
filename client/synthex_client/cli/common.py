"""What every command shares: exit statuses, the two local errors, the command's context (arguments,
consoles, API client) and the helpers for files, money, reports and progress bars."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
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

from synthex_client import config, verification
from synthex_client.api import SynthexClient

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


def existing_file(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise UsageError(f"{value}: no such file.")
    return path


def read_json_file(value: str) -> Any:
    path = existing_file(value)
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise UsageError(f"{value} is not readable JSON: {error}.") from None


def load_keys_document(context: Context) -> dict[str, Any]:
    keys_file = getattr(context.arguments, "keys", None)
    if keys_file:
        return read_json_file(keys_file)
    with context.api() as api:
        return api.keys_document()


# ISO 4217 currencies whose minor unit is not a hundredth (the API's amounts are integer minor units).
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND"), 0),
    **dict.fromkeys(("VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def money(amount_minor: int | None, currency: str | None) -> str:
    """Integer minor units as people read them: ``money(1250, "USD")`` → ``"12.50 USD"``."""
    if amount_minor is None or not currency:
        return "-"
    exponent = _EXPONENTS.get(currency.upper(), 2)
    return f"{Decimal(amount_minor).scaleb(-exponent):,.{exponent}f} {currency}"


def to_minor(amount: str, currency: str) -> int:
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


def report(context: Context, outcome: verification.Outcome, data: dict[str, Any]) -> int:
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


def transfer_progress(context: Context) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=context.err,
        disable=not context.show_progress(),
    )


def percent_progress(context: Context) -> Progress:
    """A bar with a percentage for a job or draw the server reports progress of (on stderr)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        console=context.err,
        disable=not context.show_progress(),
    )
