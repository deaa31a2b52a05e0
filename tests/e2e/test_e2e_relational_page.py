"""The product page of a relational product in the browser (issue 20): at 1366 px and at 390 px the diagram
shows every table (its columns, keys marked) and every foreign key (an arrow labelled with the child's
column), nothing in it overlaps or leaves the screen, each box leads to its table's preview, and each table
has a preview of synthetic rows. Screenshots: test-artifacts/screenshots/relational-product-<width>.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from relational_support import demo_like_sets, relational_version

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OVERLAPS = """() => {
    const rect = e => e.getBoundingClientRect();
    const boxes = [...document.querySelectorAll('svg.schema-diagram rect.frame')].map(rect);
    const labels = [...document.querySelectorAll('svg.schema-diagram rect.label-backdrop')].map(rect);
    const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    const found = [];
    boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => meet(a, b) && found.push('box/box')));
    labels.forEach(a => boxes.forEach(b => meet(a, b) && found.push('label/box')));
    labels.forEach((a, i) => labels.slice(i + 1).forEach(b => meet(a, b) && found.push('label/label')));
    return found;
}"""


@pytest.fixture
def demo_like(provider: Any, product_factory: Any, tmp_path: Path) -> Any:
    sets, metadata = demo_like_sets(300)
    product = product_factory(provider, "RAND HIE plans, persons and yearly visits (synthetic)")
    return relational_version(product, provider, sets, metadata, tmp_path), sets, metadata


@pytest.mark.parametrize("width", [1366, 390])
def test_the_diagram_and_previews_of_a_relational_product(
    live_server: Any, page: Any, screenshot: Any, demo_like: Any, width: int
) -> None:
    version, sets, metadata = demo_like
    page.set_viewport_size({"width": width, "height": 900})

    page.goto(f"{live_server.url}/products/{version.product.slug}/")
    page.wait_for_load_state("load")
    screenshot(f"relational-product-{width}")

    diagram = page.locator("svg.schema-diagram")
    assert diagram.is_visible()
    for name, table in metadata["tables"].items():
        box = diagram.locator(f'g.table-box[data-table="{name}"]')
        assert box.locator("text.name").text_content() == name
        assert box.locator("text.column").all_text_contents() == list(table["columns"])
        assert box.locator("text.mark").all_text_contents() == [
            "PK" if column == table["primary_key"] else "FK"
            for column in table["columns"]
            if column == table["primary_key"] or column in ("person_id", "plan_id")
        ]
    for relationship in metadata["relationships"]:
        child, column = relationship["child_table_name"], relationship["child_foreign_key"]
        key = f"{child}.{column}→{relationship['parent_table_name']}.{relationship['parent_primary_key']}"
        assert diagram.locator(f'g.fk[data-relationship="{key}"] text.fk-label').text_content() == column
        assert page.locator(f'li[data-foreign-key="{key}"]').is_visible()
    assert diagram.locator("path.fk-line").count() == len(metadata["relationships"])
    assert page.evaluate(OVERLAPS) == []

    # Legible: drawn at no less than 80 % of its size, the page no wider than the screen.
    scale = page.evaluate(
        "() => { const s = document.querySelector('svg.schema-diagram');"
        " return s.getBoundingClientRect().width / s.viewBox.baseVal.width; }"
    )
    assert scale >= 0.8
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width

    for name, frame in sets["synthetic"].items():
        preview = page.locator(f'section[data-table-preview="{name}"] table.preview')
        assert preview.locator("thead th").all_text_contents() == list(frame.columns)
        assert preview.locator("tbody tr").count() == min(20, len(frame))
        first = preview.locator("tbody tr").first.locator("td").all_text_contents()
        assert first[0] == str(frame.iloc[0, 0])

    diagram.locator('g.table-box[data-table="years"]').click()
    page.wait_for_url("**#table-years")
    assert page.locator('section[data-table-preview="years"]').is_visible()
