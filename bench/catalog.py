"""Catalog search + facets on 10,000 products (issue #2): median server time target < 50 ms on SQLite.

Builds a throw-away instance (its own SYNTHEX_VAR_DIR, SQLite in WAL mode as in production defaults), bulk
inserts N listed products with licenses, then times full catalog page renders (search + six facet queries +
pagination + template) through Django's test client, i.e. server time without network. Prints p50/p95.

    .venv/bin/python bench/catalog.py [N_PRODUCTS] [N_REQUESTS]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["SYNTHEX_VAR_DIR"] = tempfile.mkdtemp(prefix="synthex-bench-catalog-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
os.environ["DEBUG"] = "0"
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

WORDS = (
    "income census health clinic retail basket wine chemistry fraud credit loan sensor energy traffic".split()
)
COLUMNS = "age sex income zip amount merchant diagnosis dose visit store sku price churn tenure score".split()


def build(n: int) -> None:
    from marketplace.accounts.models import Organization, User
    from marketplace.catalog.models import Domain, Product, ProductLicense

    call_command("migrate", verbosity=0)
    rng = random.Random(7)
    owner = User.objects.create_user("bench", "bench@example.test", "x")
    orgs = [
        Organization.objects.create(slug=f"org-{i}", name=f"Org {i}", is_provider=True) for i in range(40)
    ]
    domains = Domain.values
    products = []
    now = timezone.now()
    for i in range(n):
        words = rng.sample(WORDS, 3)
        title = f"{words[0].title()} {words[1]} dataset {i}"
        tags = rng.sample(WORDS, 2)
        columns = rng.sample(COLUMNS, 6)
        fmt = rng.choice(["csv", "parquet", "jsonl"])
        org = rng.choice(orgs)
        products.append(
            Product(
                organization=org,
                slug=f"p-{i}",
                title=title,
                summary=f"Synthetic {words[2]} records",
                domain=rng.choice(domains),
                tags=tags,
                created_by=owner,
                published_at=now,
                search_text=" ".join([title, "synthetic", words[2], *tags, *columns, org.name]).lower(),
                formats=f",{fmt},",
                row_count=rng.randint(100, 5_000_000),
                column_count=6,
                price_from_minor=rng.choice([0, 500, 2500, 9900, 49900]),
                price_currency="USD",
                quality_score=rng.random(),
                quality_grade=rng.choice("ABCDF"),
                privacy_grade=rng.choice("ABCDF"),
                dcr_share=0.5,
            )
        )
    Product.objects.bulk_create(products, batch_size=1000)
    licenses = []
    for product in Product.objects.only("id"):
        for code in rng.sample(["research", "standard", "commercial"], rng.randint(1, 3)):
            licenses.append(
                ProductLicense(
                    product=product, code=code, price_minor=rng.choice([0, 900, 4900]), currency="USD"
                )
            )
    ProductLicense.objects.bulk_create(licenses, batch_size=2000)


def main() -> None:
    n_products = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    n_requests = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    started = time.perf_counter()
    build(n_products)
    print(f"built {n_products:,} products in {time.perf_counter() - started:.1f} s")
    client = Client()
    queries = [
        {},
        {"q": "income"},
        {"q": "clinic dose"},
        {"domain": "healthcare"},
        {"q": "credit", "license": "commercial", "ordering": "price"},
        {"format": "parquet", "rows": "100k-1m", "privacy_grade": "A"},
        {"q": "sensor", "page": "3"},
        {"min_quality": "0.8", "ordering": "quality"},
    ]
    for query in queries:  # warm caches and connections
        assert client.get("/", query).status_code == 200  # noqa: S101
    timings: dict[str, list[float]] = {}
    for i in range(n_requests):
        query = queries[i % len(queries)]
        start = time.perf_counter()
        response = client.get("/", query)
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 200  # noqa: S101
        timings.setdefault("page", []).append(elapsed)
        start = time.perf_counter()
        client.get("/api/v1/products/", query)
        timings.setdefault("api", []).append((time.perf_counter() - start) * 1000)
    for name, values in timings.items():
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1]
        print(
            f"{name:>4}: p50 {statistics.median(values):6.1f} ms   p95 {p95:6.1f} ms   ({len(values)} requests)"
        )


if __name__ == "__main__":
    main()
