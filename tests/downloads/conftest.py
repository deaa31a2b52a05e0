"""Fixtures for downloads: a certified version with a real stored table, a buyer's entitlement to it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from marketplace.datasets import adult_csv

REPO = Path(__file__).resolve().parents[2]
ADULT_CSV = adult_csv()
EVALUATION = {
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
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def adult_rows() -> pd.DataFrame:
    """The first 1,000 complete rows of the Adult data, all 15 columns."""
    return pd.read_csv(ADULT_CSV, na_values=["?"], nrows=1500).dropna().head(1000).reset_index(drop=True)


@pytest.fixture
def certified_table_factory(
    product_factory: Callable[..., Any], tmp_path: Path, adult_rows: pd.DataFrame
) -> Callable[..., Any]:
    """A certified version whose synthetic file is a real stored table (CSV unless ``fmt`` says parquet)."""
    from marketplace.catalog import services
    from marketplace.catalog.services import LicensePrice
    from marketplace.catalog.uploads import local_upload
    from marketplace.certification.services import issue_certificate

    def make(
        owner: Any,
        *,
        product: Any = None,
        frame: pd.DataFrame | None = None,
        fmt: str = "csv",
        license_code: str = "standard",
    ) -> Any:
        product = product or product_factory(owner, licenses=[LicensePrice(license_code, 2500, "USD")])
        path = tmp_path / f"people-{next(_numbers)}.{fmt}"
        table = adult_rows if frame is None else frame
        if fmt == "parquet":
            table.to_parquet(path, index=False)
        else:
            table.to_csv(path, index=False)
        version = services.create_version(
            product, user=owner, synthetic=[local_upload(path, name=f"people.{fmt}")]
        )
        issue_certificate(version, EVALUATION, list(version.files.filter(role="synthetic")))
        version.refresh_from_db()
        return version

    return make


@pytest.fixture
def entitlement_factory() -> Callable[..., Any]:
    from exchange.delivery.services import grant_entitlement

    def make(buyer: Any, version: Any, license_code: str = "standard") -> Any:
        return grant_entitlement(
            buyer=buyer, version=version, license_code=license_code, source=f"order:ord_test{next(_numbers)}"
        )

    return make


@pytest.fixture
def bought(provider: Any, buyer: Any, certified_table_factory: Any, entitlement_factory: Any) -> Any:
    """The buyer's active entitlement to a certified 1,000-row Adult table."""
    return entitlement_factory(buyer, certified_table_factory(provider))


@pytest.fixture(autouse=True)
def _open_throttle(settings: Any) -> None:
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"downloads": "1000/min"}}
