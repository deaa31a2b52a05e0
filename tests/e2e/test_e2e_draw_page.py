"""A buyer draws rows from a generator in the browser: the library's "Draw rows", the form, the draw's
progress while a worker makes it, then the download of their copy (issue 17 #4)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from draw_support import generator_entitlement, install_fake_sandbox, rows_left

from exchange.downloads.models import Delivery
from marketplace.generators.models import SampleDraw

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def purge_ledger_after() -> Any:
    from django.db import connection

    from exchange.ledger.schema import purge_ledger

    yield
    purge_ledger(connection)  # the ledger's triggers refuse the live server's flush


def test_a_buyer_draws_rows_watches_the_progress_and_downloads_the_copy(
    live_server: Any,
    page: Any,
    screenshot: Any,
    provider: Any,
    buyer: Any,
    product_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    purge_ledger_after: Any,
) -> None:
    entitlement = generator_entitlement(provider, buyer, product_factory)
    sandbox = install_fake_sandbox(monkeypatch, in_background=True)
    sandbox.seconds = 2.5
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", buyer.username)
    page.fill("#id_password", "correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/(accounts/profile/)?$"))
    page.goto(f"{live_server.url}/library/")
    page.get_by_role("link", name="Draw rows").click()
    page.wait_for_url(re.compile(rf".*/library/{entitlement.id}/draws/$"))
    page.fill("#id_rows", "400")
    page.fill("#id_seed", "3")
    page.fill("#id_conditions", "sex=Female")
    screenshot("40-draw-form")
    page.get_by_role("button", name="Draw rows").click()
    page.wait_for_selector(".draw-progress .progress")
    screenshot("41-draw-progress")
    page.wait_for_selector(".draw-downloads", timeout=30_000)
    screenshot("42-draw-done")
    draw = SampleDraw.objects.get()
    assert (draw.status, draw.rows, draw.conditions) == ("succeeded", 400, {"sex": "Female"})
    assert "4,600" in page.locator("#quota").inner_text()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download csv").click()
    path = tmp_path / "rows.csv"
    download_info.value.save_as(path)
    delivery = Delivery.objects.get(draw=draw, format="csv")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == delivery.sha256
    assert rows_left(entitlement) == 4600
