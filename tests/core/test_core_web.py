"""Cross-cutting web concerns: what a web process imports, how amounts are shown."""

from __future__ import annotations

import pytest


def test_web_process_loads_no_dataframe_libraries(tmp_path):
    """Pages, downloads and the API must not pay for numpy/pandas/pyarrow/matplotlib (~100 MB per web process):
    profiling, conversion and certification import them on first use."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    script = (
        "import os, sys, django; django.setup()\n"
        "from django.urls import resolve; resolve('/')\n"
        "from django.test import Client; Client()\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'sklearn', 'torch', 'matplotlib') if m in sys.modules))"
    )
    env = {
        **__import__("os").environ,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings",
        "SYNTHEX_VAR_DIR": str(tmp_path),
    }
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"


def test_web_worker_on_sqlite_loads_no_payment_or_postgres_clients(tmp_path):
    """A web worker serving pages, the API and downloads stays small (issue #6: <= 100 MB): the Stripe client
    (with requests, httpx and rich) loads on the first payment call, and psycopg not at all on SQLite."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    script = (
        "import sys\n"
        "from django.core.management import call_command\n"
        "from marketplace.wsgi import application\n"
        "call_command('migrate', verbosity=0)\n"
        "from django.test import Client\n"
        "for url in ('/healthz', '/', '/api/v1/products/', '/api/v1/ledger/heads/'):\n"
        "    Client().get(url)\n"
        "print(sorted(m for m in ('psycopg', 'psycopg2', 'stripe', 'httpx', 'rich') if sys.modules.get(m)))"
    )
    env = {
        **__import__("os").environ,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings",
        "SYNTHEX_VAR_DIR": str(tmp_path),
        "ALLOWED_HOSTS": "testserver",
    }
    env.pop("DATABASE_URL", None)
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("amount", "currency", "as_money", "as_price"),
    [
        (0, "USD", "0.00 USD", "Free"),
        (1999, "USD", "19.99 USD", "19.99 USD"),
        (1234567, "EUR", "12,345.67 EUR", "12,345.67 EUR"),
        (500, "JPY", "500 JPY", "500 JPY"),
        (-250, "USD", "-2.50 USD", "-2.50 USD"),
        (None, "USD", "—", "—"),
    ],
)
def test_money_and_price_filters(amount, currency, as_money, as_price):
    from marketplace.core.templatetags.synthex import money, price

    assert money(amount, currency) == as_money
    assert price(amount, currency) == as_price
