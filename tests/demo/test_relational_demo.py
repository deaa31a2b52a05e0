"""seed_demo's relational product: three related tables (RAND HIE, bundled with statsmodels), HMA-made,
certified as a set, and delivered to a buyer as one zip."""

from __future__ import annotations

import time

import pytest

from marketplace.catalog.models import FileRole
from marketplace.certification.models import Certificate
from marketplace.datasets.randhie import randhie_tables

pytestmark = pytest.mark.django_db


def test_the_randhie_set_is_three_related_tables_hma_can_model() -> None:
    from marketplace.generators import hma

    tables, metadata = randhie_tables()
    assert {name: len(frame) for name, frame in tables.items()} == {
        "plans": 6,
        "persons": 5294,
        "years": 20190,
    }
    assert hma.plan_fit(tables, metadata).entity_table == "persons"


@pytest.mark.slow
def test_seed_demo_makes_a_certified_three_table_product(capsys: pytest.CaptureFixture[str]) -> None:
    from marketplace.demo.products import ensure_users
    from marketplace.demo.relational import TITLE, seed_relational_product

    provider = ensure_users()["demo-provider"]
    started = time.perf_counter()
    product = seed_relational_product(provider, certify=True, log=print)
    seconds = time.perf_counter() - started
    version = product.versions.get()
    assert version.status == "certified", capsys.readouterr().out
    synthetic = version.files.filter(role=FileRole.SYNTHETIC)
    assert sorted(synthetic.values_list("table_name", flat=True)) == ["persons", "plans", "years"]
    document = Certificate.objects.get(version=version).document
    assert [a["name"] for a in document["subject"]["artifacts"]] == ["persons", "plans", "years"]
    assert document["relational"]["referential_integrity"] == 1.0
    print(f"relational demo: {seconds:.0f} s, relational grade {document['relational']['grade']}")
    assert seed_relational_product(provider, certify=True, log=print) == product  # once only
    assert product.title == TITLE
