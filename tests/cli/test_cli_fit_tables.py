"""``synthex fit-tables``: a folder of related tables becomes an HMA generator, its fit followed to the end."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from marketplace.generators.models import GeneratorModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relational"))
from hma_data import chain, two_tables  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def generator_product(provider: Any, product_factory: Any) -> Any:
    return product_factory(provider, "RAND visits", kind="generator")


def _folder(path: Path, tables: dict[str, pd.DataFrame], metadata: dict) -> Path:
    path.mkdir()
    for name, frame in tables.items():
        frame.to_csv(path / f"{name}.csv", index=False)
    (path / "metadata.json").write_text(json.dumps(metadata))
    return path


def test_fit_tables_sends_a_folder_and_watches_the_fit_to_its_certificate(
    cli: Any, provider: Any, token_for: Any, generator_product: Any, tmp_path: Path
) -> None:
    folder = _folder(tmp_path / "visits", *two_tables(200))
    run = cli(
        "--json",
        "fit-tables",
        generator_product.slug,
        folder,
        "--row-quotas",
        '{"standard": 500}',
        "--watch",
        "--interval",
        "0.2",
        token=token_for(provider),
    )
    assert run.code == 0, run.err
    generator = GeneratorModel.objects.get(version__product=generator_product)
    assert (generator.synthesizer, generator.status, generator.row_quotas) == (
        "hma",
        "ready",
        {"standard": 500},
    )
    assert generator.parameters == {"entity_table": "persons"}
    assert '"status": "succeeded"' in run.out
    assert generator.version.certificates.count() == 1


def test_fit_tables_reports_a_set_hma_cannot_take_and_nothing_is_made(
    cli: Any, provider: Any, token_for: Any, generator_product: Any, tmp_path: Path
) -> None:
    folder = _folder(tmp_path / "chain", *chain(80))
    refused = cli("fit-tables", generator_product.slug, folder, token=token_for(provider))
    assert refused.code == 3
    assert "schema_too_deep" in refused.err
    single = cli("fit-tables", generator_product.slug, folder / "plans.csv", token=token_for(provider))
    assert single.code == 2
    assert "at least two related tables" in single.err
    assert GeneratorModel.objects.count() == 0
