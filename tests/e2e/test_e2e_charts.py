"""Charts in the browser (issue 17 #8): the certificate's matplotlib charts and the product page's column
sparklines stay inside the screen at 1366 px and at 390 px; screenshots in test-artifacts/screenshots/
(charts-certificate-<width>.png, charts-product-<width>.png)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def small_tables(small_tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The shared tables with a column named like a script tag (its name must show as text, never run)."""
    return {role: frame.rename(columns={"workclass": HOSTILE}) for role, frame in small_tables.items()}


@pytest.fixture
def certified(provider: Any, product_factory: Any, version_factory: Any, small_tables: Any) -> Any:
    from marketplace.certification.engine.evaluate import evaluate
    from marketplace.certification.services import issue_certificate

    version = version_factory(product_factory(provider, "Households with charts"), provider)
    evaluation = evaluate(small_tables["synthetic"], small_tables["train"], small_tables["holdout"]).to_dict()
    evaluation["privacy"]["passed"] = True  # listed whatever these tiny tables score (a layout test)
    # Committed (transaction=True): the on-commit drawing of the charts runs eagerly here.
    return issue_certificate(version, evaluation, list(version.files.filter(role="synthetic")))


def _outside(page: Any, selector: str, width: int) -> list[str]:
    """Elements matching ``selector`` not wholly visible: outside [0, width], or past the visible part of a
    scrolling ancestor (a wide table's own scroll box)."""
    boxes = page.eval_on_selector_all(
        selector,
        """els => els.map(e => {
            const r = e.getBoundingClientRect();
            let right = innerWidth;
            for (let a = e.parentElement; a; a = a.parentElement) {
                const style = getComputedStyle(a);
                if (['auto', 'scroll', 'hidden'].includes(style.overflowX)) {
                    const box = a.getBoundingClientRect();
                    right = Math.min(right, box.left + a.clientWidth);
                }
            }
            return [r.left, r.right, right];
        })""",
    )
    assert boxes, selector
    return [
        f"{selector} at {left:.0f}–{right:.0f} (visible to {limit:.0f})"
        for left, right, limit in boxes
        if left < 0 or right > min(width, limit) + 1
    ]


@pytest.mark.parametrize("width", [1366, 390])
def test_charts_fit_the_screen_and_show_their_labels(
    live_server: Any, page: Any, screenshot: Any, certified: Any, width: int
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_viewport_size({"width": width, "height": 900})

    page.goto(f"{live_server.url}/certificates/{certified.id}/")
    page.wait_for_load_state("load")
    screenshot(f"charts-certificate-{width}")
    assert page.locator("svg.mpl-chart").count() == 9
    assert page.get_by_text("synthetic → holdout").first.is_visible()
    assert page.locator("figcaption code", has_text=HOSTILE).count() == 1
    too_wide = _outside(page, "svg.mpl-chart", width)

    page.goto(f"{live_server.url}/products/{certified.version.product.slug}/")
    page.wait_for_load_state("load")
    screenshot(f"charts-product-{width}")
    too_wide += _outside(page, "svg.chart", width)
    too_wide += [
        f"page lays out {scroll} px wide"
        for scroll in [page.evaluate("document.documentElement.scrollWidth")]
        if scroll > width + 1
    ]

    assert too_wide == []
    assert dialogs == []
