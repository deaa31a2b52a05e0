"""Helpers for tests that draw rows from a generator without a model (importable by name, unlike conftest):
a ready generator with an entitlement, and a stand-in for the sandboxed model that writes Adult rows."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from marketplace.datasets import adult_csv

ADULT = pd.read_csv(adult_csv(), na_values=["?"], nrows=3000).dropna().reset_index(drop=True)


class FakeSandbox:
    """Replaces ``marketplace.generators.services.draws.draw_in_sandbox``: a draw is ``rows`` Adult rows picked by
    the seed; it fails when ``fail`` is set and takes ``seconds`` (to watch its progress)."""

    def __init__(self) -> None:
        self.fail = False
        self.seconds = 0.0
        self.calls = 0
        self.rows_made = 0

    def __call__(
        self, generator: Any, *, rows: int, seed: int, conditions: Any, folder: Path, limits: Any = None
    ) -> Any:
        from marketplace.generators.errors import GeneratorError
        from marketplace.generators.services.draws import SampledFile

        self.calls += 1
        self.rows_made = rows
        time.sleep(self.seconds)
        if self.fail:
            raise GeneratorError("sandbox_failed", "The model stopped with an error.", 500)
        path = folder / "sample.parquet"
        frame = ADULT.sample(n=rows, replace=True, random_state=seed % 2**32)
        for column, value in (conditions or {}).items():
            frame[column] = value
        frame.to_parquet(path, index=False)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return SampledFile(path=path, rows=rows, sha256=digest, size_bytes=path.stat().st_size)


def install_fake_sandbox(monkeypatch: Any, *, in_background: bool = False) -> FakeSandbox:
    """Install a :class:`FakeSandbox`; with ``in_background`` a queued draw runs in a thread, as a worker
    would (the request that queued it returns at once)."""
    from django.db import connection

    from marketplace.generators import tasks
    from marketplace.generators.services import draws

    fake = FakeSandbox()
    monkeypatch.setattr(draws, "draw_in_sandbox", fake)
    if in_background:

        def work(draw_id: str) -> None:
            try:
                draws.run_draw(draw_id)
            finally:
                connection.close()

        def delay(draw_id: str) -> None:
            threading.Thread(target=work, args=(draw_id,), daemon=True).start()

        monkeypatch.setattr(tasks.sample_generator_task, "delay", delay)
    return fake


def generator_entitlement(provider: Any, buyer: Any, product_factory: Any, *, quota: int = 5000) -> Any:
    """``buyer``'s standard entitlement to a ready generator (columns of Adult) with a ``quota``-row quota."""
    from exchange.delivery.services import grant_entitlement
    from marketplace.catalog.models import ProductVersion, VersionFile
    from marketplace.catalog.services import LicensePrice
    from marketplace.generators.models import GeneratorModel

    product = product_factory(
        provider, "People generator", kind="generator", licenses=[LicensePrice("standard", 4900, "USD")]
    )
    version = ProductVersion.objects.create(
        product=product, number=1, status="certified", created_by=provider
    )
    # The published evaluation sample that conditions are checked against (its profile only).
    VersionFile.objects.create(
        version=version,
        role="synthetic",
        table_name="sample",
        original_filename="sample.parquet",
        format="parquet",
        storage_name=f"files/{product.slug}-sample.parquet",
        sha256="0" * 64,
        size_bytes=1,
        rows=1000,
        column_count=2,
        profile={
            "columns": [
                {
                    "name": "sex",
                    "top_values": [["Male", 670], ["Female", 330]],
                    "distinct": 2,
                    "distinct_is_exact": True,
                },
                {"name": "age", "min": 17, "max": 90},
            ]
        },
    )
    GeneratorModel.objects.create(
        version=version,
        kind=GeneratorModel.Kind.UPLOADED,
        synthesizer="uploaded",
        status=GeneratorModel.Status.READY,
        sdv_metadata={"columns": {"sex": {"sdtype": "categorical"}, "age": {"sdtype": "numerical"}}},
        row_quotas={"standard": quota},
    )
    return grant_entitlement(
        buyer=buyer, version=version, license_code="standard", source=f"order:ord_{product.slug}"
    )


def rows_left(entitlement: Any) -> int:
    from exchange.delivery.samples import quota_state

    return int(quota_state(entitlement)["rows_left"])
