"""Fixtures of the CLI tests: a live server, the CLI run in-process or as a process, localstripe."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_support import CLIENT, REPO, Run, cli_process  # noqa: F401

if str(CLIENT) not in sys.path:
    sys.path.insert(0, str(CLIENT))


@pytest.fixture
def server(live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The live server's URL, with the CLI's settings under ``tmp_path``. The ledger is purged before the
    live server's flush (its append-only triggers refuse the flush's DELETEs)."""
    from django.db import connection

    from exchange.ledger.schema import purge_ledger

    monkeypatch.setenv("SYNTHEX_CONFIG", str(tmp_path / "synthex" / "config.json"))
    monkeypatch.setenv("SYNTHEX_URL", live_server.url)
    monkeypatch.delenv("SYNTHEX_TOKEN", raising=False)
    yield live_server.url
    purge_ledger(connection)


@pytest.fixture
def cli(server: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``synthex ARGS`` in this process against the live server; ``token=`` sets SYNTHEX_TOKEN."""
    from synthex_client.cli import main

    def run(*args: str, token: str | None = None) -> Run:
        capsys.readouterr()
        previous = os.environ.pop("SYNTHEX_TOKEN", None)
        if token:
            os.environ["SYNTHEX_TOKEN"] = token
        try:
            code = main([str(arg) for arg in args])
        finally:
            os.environ.pop("SYNTHEX_TOKEN", None)
            if previous is not None:
                os.environ["SYNTHEX_TOKEN"] = previous
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def token_for() -> Callable[[Any], str]:
    from marketplace.accounts.services import api_token_for

    return api_token_for


@pytest.fixture
def certified_factory(product_factory: Callable[..., Any], tmp_path: Path) -> Callable[..., tuple[Any, Path]]:
    """A listed product of ``owner`` with one certified version whose certificate (signed for real) names
    a real file; returns the version and that file."""
    from django.utils import timezone

    from marketplace.catalog.models import ProductVersion, VersionFile
    from marketplace.catalog.services import LicensePrice
    from marketplace.certification.services import issue_certificate

    def make(owner: Any, *, price_minor: int = 2500) -> tuple[Any, Path]:
        product = product_factory(owner, licenses=[LicensePrice("standard", price_minor, "USD")])
        product.is_listed = True
        product.published_at = timezone.now()
        product.save(update_fields=["is_listed", "published_at"])
        version = ProductVersion.objects.create(
            product=product, number=1, status="certifying", created_by=owner
        )
        data = tmp_path / f"people-{product.slug}.csv"
        data.write_bytes(b"age,hours\n31,40\n45,38\n")
        synthetic = VersionFile.objects.create(
            version=version,
            role="synthetic",
            table_name="people",
            original_filename="people.csv",
            format="csv",
            storage_name=f"files/{product.slug}.csv",
            sha256=hashlib.sha256(data.read_bytes()).hexdigest(),
            size_bytes=data.stat().st_size,
            rows=2,
            column_count=2,
        )
        evaluation = {
            "quality": {"score": 0.91, "grade": "A", "column_shapes": 0.93, "column_pair_trends": 0.89},
            "plausibility": {
                "score": 1.0,
                "grade": "A",
                "rows_violating_any": 0.0,
                "holdout_rows_violating_any": 0.0,
                "rules": [],
            },
            "privacy": {"grade": "A", "passed": True, "exact_match_rate": 0.0, "dcr_share": 0.5},
            "charts": {},
            "parameters": {},
            "engine": {"name": "synthex-certify", "version": "test"},
        }
        issue_certificate(version, evaluation, [synthetic])
        version.refresh_from_db()
        return version, data

    return make


@pytest.fixture(scope="session")
def cli_localstripe(localstripe_url: str) -> str:
    """The session's localstripe (tests/conftest.py)."""
    return localstripe_url


@pytest.fixture
def local_payments(settings: Any, cli_localstripe: str) -> str:
    """Local payment mode against a wiped localstripe; its webhooks go to a closed port (the local confirm
    applies a success at once)."""
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_API_BASE = cli_localstripe
    settings.STRIPE_WEBHOOK_SECRET = "whsec_cli_tests"
    settings.SYNTHEX_PLATFORM_FEE_RATE = Decimal("0.20")
    httpx.post(
        f"{cli_localstripe}/_config/webhooks/synthex",
        data={"url": "http://127.0.0.1:9/nowhere/", "secret": "whsec_cli_tests"},
        timeout=5,
    ).raise_for_status()
    httpx.delete(f"{cli_localstripe}/_config/data", timeout=5).raise_for_status()
    return cli_localstripe
