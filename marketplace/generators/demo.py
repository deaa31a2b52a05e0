"""The demo's differentially private generator product (``seed_demo``): MST at ε = 1 on Adult."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from marketplace.accounts.models import Organization, User
from marketplace.catalog import services as catalog
from marketplace.catalog.models import Product
from marketplace.catalog.uploads import local_upload
from marketplace.datasets import load_adult
from marketplace.generators import budget, native

TITLE = "US Census Income generator (differentially private, ε = 1)"


def seed_dp_generator(provider: User, *, certify: bool = True, log: Callable[[str], None] = print) -> Product:
    """Create (once) a generator product of civic-data-lab with a declared budget of ε = 3 and one MST fit at
    ε = 1, δ = 1e-6 on Adult; with ``certify`` the fit and its certificate run now, else in the worker."""
    existing = Product.objects.filter(title=TITLE).first()
    if existing is not None and existing.versions.exists():
        return existing
    product = existing or catalog.create_product(
        user=provider,
        organization=Organization.objects.get(slug="civic-data-lab"),
        title=TITLE,
        summary="Draw census-like adults on demand from a differentially private model (MST, ε = 1, δ = 1e-6).",
        description_md=(
            "A generator fitted on the **Adult** table (UCI, CC BY 4.0) by Synthex's MST engine: noisy "
            "marginals on a maximum spanning tree, with ε = 1 and δ = 1e-6 stated in the signed certificate "
            "and spent on the public ledger from a declared total of ε = 3. Engine licence: MIT AND "
            "BSD-3-Clause (no SDV)."
        ),
        domain="census",
        kind="generator",
        tags=("census", "income", "differential-privacy", "generator"),
        licenses=[catalog.LicensePrice("research", 0, "USD"), catalog.LicensePrice("standard", 2900, "USD")],
    )
    budget.declare_budget(product, 3)
    log(f"  {TITLE}: fitting MST at ε = 1…")
    with tempfile.TemporaryDirectory(prefix="synthex-demo-dp-") as folder:
        path = Path(folder) / "adult.csv"
        load_adult().to_csv(path, index=False)
        generator = native.create_native_generator(
            product,
            user=provider,
            data=local_upload(path),
            synthesizer="dp_mst",
            epsilon=1.0,
            delta=1e-6,
            target_column="class",
        )
    if certify:
        from marketplace.generators.tasks import fit_generator_task

        job = generator.version.jobs.get(kind="fit")
        fit_generator_task.apply(args=[str(job.pk)])
        job.refresh_from_db()
        if job.error:
            log(f"  {TITLE}: fit failed: {job.error}")
    return product
