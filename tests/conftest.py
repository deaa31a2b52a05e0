"""Shared fixtures: users, provider organizations, API clients, small real tables."""

from __future__ import annotations

import io
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from marketplace.datasets import adult_csv

# Playwright drives the browser from the test's thread while the ORM is used synchronously (RECIPES.md).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REPO = Path(__file__).resolve().parents[1]
ADULT_CSV = adult_csv()
_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """Every test starts with empty caches: the test database is rolled back between tests, which the caches
    cannot see, and a rolled-back user's id comes back for the next test's user with the old one's throttle
    history (downloads answered 429 once enough tests had run on one worker)."""
    from django.conf import settings
    from django.core.cache import caches

    for alias in settings.CACHES:
        caches[alias].clear()
    yield


# The audit checks that hold business rows (orders, refunds, entitlements, downloads) to the ledger. Tests that
# write journal entries with no business rows behind them run only the ledger's own checks.
BUSINESS_CHECKS = (
    "orders.sales",
    "orders.refunds",
    "orders.payouts",
    "delivery.entitlements",
    "ledger.kinds",
    "downloads.events",
    "downloads.deliveries",
    "downloads.after_revocation",
)


@pytest.fixture
def ledger_checks_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run only the ledger's own audit checks (for journal entries written without orders behind them)."""
    from exchange.ledger import audit

    monkeypatch.setattr(
        audit,
        "EXTRA_CHECKS",
        [(name, check) for name, check in audit.EXTRA_CHECKS if name not in BUSINESS_CHECKS],
    )


@pytest.fixture
def adult_frame() -> pd.DataFrame:
    return pd.read_csv(ADULT_CSV, na_values=["?"], nrows=3000)


@pytest.fixture
def user_factory(db: Any) -> Callable[..., Any]:
    from marketplace.accounts.models import User

    def make(username: str | None = None, password: str = "correct-horse-battery", **fields: Any) -> User:
        name = username or f"user{next(_counter)}"
        return User.objects.create_user(
            username=name, email=f"{name}@example.test", password=password, **fields
        )

    return make


@pytest.fixture
def organization_factory(db: Any) -> Callable[..., Any]:
    from marketplace.accounts.services import create_organization

    def make(owner: Any, name: str | None = None, is_provider: bool = True) -> Any:
        return create_organization(
            owner=owner, name=name or f"Provider {next(_counter)}", is_provider=is_provider
        )

    return make


@pytest.fixture
def provider(user_factory: Callable[..., Any], organization_factory: Callable[..., Any]) -> Any:
    """A user who is the owner of one provider organization (``provider.organization``)."""
    user = user_factory("provider")
    user.organization = organization_factory(user, "Acme Synthetic")
    return user


@pytest.fixture
def buyer(user_factory: Callable[..., Any]) -> Any:
    return user_factory("buyer")


@pytest.fixture
def api_client_for() -> Callable[[Any], Any]:
    from rest_framework.test import APIClient

    from marketplace.accounts.services import api_token_for

    def make(user: Any | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
        return client

    return make


@pytest.fixture
def product_factory(db: Any) -> Callable[..., Any]:
    from marketplace.catalog import services

    def make(owner: Any, title: str | None = None, **fields: Any) -> Any:
        licenses = fields.pop("licenses", [services.LicensePrice("standard", 2500, "USD")])
        return services.create_product(
            user=owner,
            organization=fields.pop("organization", owner.organization),
            title=title or f"Product {next(_counter)}",
            summary=fields.pop("summary", "A synthetic table for tests."),
            domain=fields.pop("domain", "census"),
            licenses=licenses,
            **fields,
        )

    return make


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    return sink.getvalue()


@pytest.fixture
def small_tables(adult_frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Real adult rows split into train/holdout, and a 'synthetic' table drawn column-wise from train."""
    frame = adult_frame[["age", "workclass", "education", "hours-per-week", "sex", "class"]].head(1000)
    train, holdout = frame.iloc[:800].reset_index(drop=True), frame.iloc[800:].reset_index(drop=True)
    synthetic = pd.DataFrame(
        {
            name: train[name].sample(frac=1.0, random_state=i).to_numpy()
            for i, name in enumerate(train.columns)
        }
    )
    return {"synthetic": synthetic, "train": train, "holdout": holdout}


@pytest.fixture
def version_factory(small_tables: dict[str, pd.DataFrame], tmp_path: Path) -> Callable[..., Any]:
    """Upload a version through the same service the web and API use (files stored, hashed, profiled)."""
    from marketplace.catalog import services
    from marketplace.catalog.uploads import local_upload

    def make(
        product: Any, user: Any, *, submit: bool = False, with_reference: bool = True, target: str = ""
    ) -> Any:
        paths = {}
        for role, frame in small_tables.items():
            path = tmp_path / f"{role}-{next(_counter)}.csv"
            path.write_bytes(csv_bytes(frame))
            paths[role] = path
        version = services.create_version(
            product,
            user=user,
            synthetic=[local_upload(paths["synthetic"], name="people.csv")],
            train=local_upload(paths["train"]) if with_reference else None,
            holdout=local_upload(paths["holdout"]) if with_reference else None,
            target_column=target,
        )
        if submit:
            from marketplace.certification.submission import submit_version

            version = submit_version(version, user=user)
        return version

    return make


# Browser tests: Debian's chromium driven by Playwright against pytest-django's live server.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: `make test` installs it (apt-get install chromium).")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def screenshot(page: Any) -> Any:
    """Save a full-page screenshot under test-artifacts/screenshots/ (looked at by people, kept out of git)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# Stripe: one localstripe process on loopback for the whole session (state in memory, wiped per test by
# the fixtures that use it).
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """A localstripe process on 127.0.0.1 for the whole session, state in memory."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange.orders.localstripe_server", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.delete(f"{url}/_config/data", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


# S3: moto_server (RECIPES.md), and both storages on one bucket as production has them.
MOTO = REPO / ".venv" / "bin" / "moto_server"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto_server on a free loopback port for the whole session (S3 for the upload tests)."""
    if not MOTO.exists() and shutil.which("moto_server") is None:
        pytest.skip("moto_server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def s3_files(settings: Any, moto_url: str) -> Any:
    """Product files and reference data on one moto bucket (as production splits them: files/, reference/);
    returns the boto3 client and the bucket's name."""
    import boto3

    bucket = f"synthex-uploads-{time.monotonic_ns()}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    options = {
        "bucket_name": bucket,
        "endpoint_url": moto_url,
        "access_key": "testing",
        "secret_key": "testing",
        "region_name": "us-east-1",
        "signature_version": "s3v4",
        "addressing_style": "path",
        "file_overwrite": False,
        "querystring_auth": True,
    }
    backend = "storages.backends.s3.S3Storage"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": backend, "OPTIONS": {**options, "location": "files"}},
        "reference": {"BACKEND": backend, "OPTIONS": {**options, "location": "reference"}},
    }
    return client, bucket
