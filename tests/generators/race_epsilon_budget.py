"""Race DP fits for the last of a product's ε budget: THREADS threads, each with its own connection to a file
SQLite database in WAL mode (IMMEDIATE transactions, as ``make run``), call the fit service for the same
product at once, each asking ε = 1 of a total of TOTAL. Run as a process by test_generators_dp.py (not
collected by pytest: pytest-django's in-memory SQLite is one shared connection). The fit jobs are not run
(the race is over the spend). Prints one JSON line: outcomes, ε spent, spend rows, ledger events, audit.

Usage: python race_epsilon_budget.py THREADS TOTAL
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from pathlib import Path

import django


def main(threads: int, total: float) -> None:
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)
    import pandas as pd

    from exchange.ledger.audit import run_audit
    from exchange.ledger.models import LedgerEvent
    from marketplace.accounts.models import User
    from marketplace.accounts.services import create_organization
    from marketplace.catalog import services as catalog
    from marketplace.catalog.uploads import local_upload
    from marketplace.datasets import adult_csv
    from marketplace.generators import native, tasks
    from marketplace.generators.budget import declare_budget
    from marketplace.generators.errors import GeneratorError
    from marketplace.generators.models import EpsilonSpend, PrivacyBudget

    tasks.fit_generator_task.delay = lambda *args, **kwargs: None  # type: ignore[method-assign]
    owner = User.objects.create_user(username="provider", email="p@example.test", password="x" * 12)
    organization = create_organization(owner=owner, name="Race Provider", is_provider=True)
    product = catalog.create_product(
        user=owner,
        organization=organization,
        title="Race generator",
        summary="A generator for the race.",
        domain="census",
        kind="generator",
        licenses=[catalog.LicensePrice("standard", 2500, "USD")],
    )
    declare_budget(product, total)
    folder = Path(tempfile.mkdtemp())
    frame = pd.read_csv(adult_csv(), na_values=["?"], nrows=600).dropna().head(300)
    paths = []
    for index in range(threads):
        path = folder / f"people{index}.csv"
        frame[["age", "workclass", "sex", "class"]].to_csv(path, index=False)
        paths.append(path)
    start = threading.Barrier(threads)
    outcomes: dict[int, str] = {}

    def fit(index: int) -> None:
        try:
            upload = local_upload(paths[index], name="people.csv")
            start.wait(20)
            native.create_native_generator(
                product, user=owner, data=upload, synthesizer="dp_mst", epsilon=1.0
            )
            outcomes[index] = "spent"
        except GeneratorError as error:
            outcomes[index] = error.code
        except Exception as error:  # reported: the test fails on it
            outcomes[index] = f"error: {error!r}"
        finally:
            connection.close()

    workers = [threading.Thread(target=fit, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    budget = PrivacyBudget.objects.get(product=product)
    print(
        json.dumps(
            {
                "outcomes": sorted(outcomes.values()),
                "spent_micro": budget.epsilon_spent_micro,
                "spends": EpsilonSpend.objects.count(),
                "events": LedgerEvent.objects.filter(kind="privacy.epsilon_spent").count(),
                "versions": product.versions.count(),
                "audit_ok": run_audit().ok,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
