"""The product page of a relational version (issue 20): the diagram of its tables and keys and a preview per
table, made of synthetic rows only — no value of the train or holdout tables reaches the page."""

from __future__ import annotations

import pytest
from relational_support import marked_sets, relational_version

pytestmark = pytest.mark.django_db

FOREIGN_KEYS = ("years.person_id→persons.person_id", "years.plan_id→plans.plan_id")


@pytest.fixture
def marked(provider, product_factory, tmp_path):
    sets, metadata = marked_sets()
    version = relational_version(product_factory(provider, "Marked set"), provider, sets, metadata, tmp_path)
    return version, sets


def _reference_values(sets) -> set[str]:
    return {
        str(value)
        for role in ("train", "holdout")
        for frame in sets[role].values()
        for column in frame.columns
        for value in frame[column].tolist()
    }


@pytest.mark.parametrize("visitor", ["anonymous", "provider"])
def test_the_page_shows_the_diagram_and_synthetic_previews_and_no_reference_value(
    client, provider, marked, visitor
):
    version, sets = marked
    if visitor == "provider":
        client.force_login(provider)  # a member also sees the private reference files listed (not their rows)

    response = client.get(f"/products/{version.product.slug}/")

    assert response.status_code == 200
    page = response.content.decode()
    for name, frame in sets["synthetic"].items():
        assert page.count(f'<g class="table-box" data-table="{name}">') == 1
        assert page.count(f'data-table-preview="{name}"') == 1
        assert f"{len(frame)} rows" in page
        first = frame.iloc[0]
        assert all(f"<td>{value}</td>" in page for value in first.tolist())
    for key in FOREIGN_KEYS:
        assert page.count(f'data-relationship="{key}"') == 1
        assert page.count(f'data-foreign-key="{key}"') == 1
    leaked = sorted(value for value in _reference_values(sets) if value in page)
    assert leaked == []
    assert ("Private reference data" in page) is (visitor == "provider")


def test_a_single_table_page_has_no_diagram(client, provider, product_factory, version_factory):
    version = version_factory(product_factory(provider, "One table"), provider, submit=True)

    page = client.get(f"/products/{version.product.slug}/").content.decode()

    assert 'id="schema-diagram"' not in page
    assert page.count('data-table-preview="people"') == 1
