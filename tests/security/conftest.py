"""Fixtures of the attack tests: local Stripe, a certified version with a real stored table."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from orders_support import EVALUATION

WEBHOOK_SECRET = "whsec_security_tests"
DEAD_URL = "http://127.0.0.1:9/nowhere/"


@pytest.fixture
def local_stripe(settings: Any, localstripe_url: str) -> str:
    """Local mode against a wiped localstripe whose webhooks go nowhere."""
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.SYNTHEX_PLATFORM_FEE_RATE = Decimal("0.20")
    httpx.post(
        f"{localstripe_url}/_config/webhooks/synthex",
        data={"url": DEAD_URL, "secret": WEBHOOK_SECRET},
        timeout=5,
    ).raise_for_status()
    httpx.delete(f"{localstripe_url}/_config/data", timeout=5).raise_for_status()
    return localstripe_url


@pytest.fixture
def sellable_version(
    provider: Any, product_factory: Callable[..., Any], tmp_path: Path, adult_frame: pd.DataFrame
) -> Any:
    """A listed product of ``provider`` with a certified version whose synthetic file is a stored CSV table
    (standard license at 25.00 USD)."""
    from marketplace.catalog import services
    from marketplace.catalog.uploads import local_upload
    from marketplace.certification.services import issue_certificate

    product = product_factory(provider, licenses=[services.LicensePrice("standard", 2500, "USD")])
    path = tmp_path / "people.csv"
    adult_frame[["age", "education", "hours-per-week", "sex"]].dropna().head(300).to_csv(path, index=False)
    version = services.create_version(
        product, user=provider, synthetic=[local_upload(path, name="people.csv")]
    )
    issue_certificate(version, EVALUATION, list(version.files.filter(role="synthetic")))
    version.refresh_from_db()
    return version
