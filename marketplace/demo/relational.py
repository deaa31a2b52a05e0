"""The demo's relational product (``seed_demo``): three related tables of the RAND Health Insurance
Experiment (bundled with statsmodels), synthesized by SDV's HMASynthesizer and certified as a set.

The real set is split by entity (a fifth of the persons, each with all their years, held out), HMA is fitted
on the train set, and a set of as many synthetic persons (with their years) is sampled; the platform then
certifies it against train and holdout exactly as for a provider's upload of a set.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from django.db import transaction

from marketplace.accounts.models import Organization, User
from marketplace.catalog import relational
from marketplace.catalog import services as catalog
from marketplace.catalog.models import Product
from marketplace.catalog.uploads import local_upload
from marketplace.certification import submission
from marketplace.demo.relational_sets import demo_sets

TITLE = "RAND Health Insurance Experiment: plans, persons and yearly visits (synthetic)"


def seed_relational_product(
    provider: User, *, certify: bool = True, log: Callable[[str], None] = print
) -> Product:
    """Create (once) the three-table product of meridian-health; with ``certify`` its certificate is made
    now, else by the worker."""
    existing = Product.objects.filter(title=TITLE).first()
    if existing is not None and existing.versions.exists():
        return existing
    sets = demo_sets(log=log, label=TITLE)
    product = existing or catalog.create_product(
        user=provider,
        organization=Organization.objects.get(slug="meridian-health"),
        title=TITLE,
        summary="Insurance plans, persons and their yearly doctor visits: three related tables, certified as a set.",
        description_md=(
            "A synthetic set of three related tables from the **RAND Health Insurance Experiment** (public "
            "domain, bundled with statsmodels): `plans` (coinsurance, deductible), `persons` (health "
            "attributes) and `years` (physician visits per year, each naming its person and plan). Made by "
            "SDV's HMASynthesizer; the certificate judges every table, the links between them (referential "
            "integrity, children per person) and privacy per person with all their years."
        ),
        domain="healthcare",
        tags=("health", "insurance", "relational", "multi-table"),
        licenses=[catalog.LicensePrice("research", 0, "USD"), catalog.LicensePrice("standard", 1900, "USD")],
    )
    with tempfile.TemporaryDirectory(prefix="synthex-demo-set-") as name:
        folder = Path(name)
        files: dict[str, list] = {}
        for role, role_tables in (
            ("synthetic", sets.synthetic),
            ("train", sets.train),
            ("holdout", sets.holdout),
        ):
            (folder / role).mkdir()
            for table, frame in role_tables.items():
                path = folder / role / f"{table}.csv"
                frame.to_csv(path, index=False)
                files.setdefault(role, []).append(local_upload(path, name=f"{table}.csv"))
        version = relational.create_relational_version(
            product, user=provider, metadata=sets.metadata, changelog="First release.", **files
        )
    with transaction.atomic():
        submission.submit_version(version, user=provider)
    if certify:
        from marketplace.certification.tasks import certify_version_task

        job = version.jobs.get()
        log(f"  {TITLE}: certifying the set…")
        certify_version_task.apply(args=[str(job.pk)])
        job.refresh_from_db()
        if job.error:
            log(f"  {TITLE}: certification failed: {job.error}")
    return product
