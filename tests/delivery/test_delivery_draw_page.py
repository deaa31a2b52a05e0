"""The draw page (issue 17 #4): a buyer with an entitlement to a generator draws rows from the web, with
rows, seed and conditions; refusals change nothing; a failed draw takes nothing from the quota."""

from __future__ import annotations

from typing import Any

import pytest
from draw_support import FakeSandbox, generator_entitlement, install_fake_sandbox, rows_left

from exchange.delivery.views import FormError, parse_conditions
from exchange.downloads.models import Delivery
from marketplace.generators.models import SampleDraw

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> FakeSandbox:
    return install_fake_sandbox(monkeypatch)


@pytest.fixture
def entitlement(provider: Any, buyer: Any, product_factory: Any) -> Any:
    return generator_entitlement(provider, buyer, product_factory)


def _post(client: Any, capture: Any, entitlement: Any, **form: str) -> Any:
    with capture(execute=True):
        return client.post(f"/library/{entitlement.id}/draws/", form)


def test_a_buyer_draws_rows_from_the_page_and_downloads_the_copy(
    client: Any, buyer: Any, entitlement: Any, sandbox: FakeSandbox, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(buyer)
    page = client.get(f"/library/{entitlement.id}/draws/").content.decode()
    assert "You have <strong>5,000</strong> of 5,000 rows left" in page
    response = _post(
        client,
        django_capture_on_commit_callbacks,
        entitlement,
        rows="300",
        seed="11",
        conditions="sex=Female\n",
    )
    draw = SampleDraw.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/library/{entitlement.id}/draws/?draw={draw.id}"
    assert (draw.status, draw.rows, draw.seed, draw.conditions) == ("succeeded", 300, 11, {"sex": "Female"})
    page = client.get(response["Location"]).content.decode()
    assert "You have <strong>4,700</strong> of 5,000 rows left" in page
    assert f'action="/library/{entitlement.id}/draws/{draw.id}/csv/"' in page
    download = client.post(f"/library/{entitlement.id}/draws/{draw.id}/csv/")
    assert download.status_code == 302 and download["Location"].startswith("/api/v1/downloads/")
    delivery = Delivery.objects.get(draw=draw, format="csv")
    assert delivery.sha256 != draw.sha256
    assert (sandbox.rows_made, delivery.rows) == (300 + 30 + 16, 300)  # the copy holds every row asked for


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"rows": "5001"}, "This license has 5,000 rows left; 5,001 were requested."),
        ({"rows": "ten"}, "Rows must be a whole number."),
        ({"rows": "10", "conditions": "sex Female"}, "Write each condition as column=value"),
        ({"rows": "10", "seed": "-1"}, "seed must be a whole number"),
    ],
)
def test_refused_requests_say_why_and_change_nothing(
    client: Any,
    buyer: Any,
    entitlement: Any,
    sandbox: FakeSandbox,
    django_capture_on_commit_callbacks: Any,
    form: dict[str, str],
    message: str,
) -> None:
    client.force_login(buyer)
    response = _post(client, django_capture_on_commit_callbacks, entitlement, **form)
    assert response.status_code in (400, 409)
    assert message in response.content.decode()
    assert SampleDraw.objects.count() == 0
    assert rows_left(entitlement) == 5000


def test_a_failed_draw_shows_its_reason_and_takes_no_rows(
    client: Any, buyer: Any, entitlement: Any, sandbox: FakeSandbox, django_capture_on_commit_callbacks: Any
) -> None:
    sandbox.fail = True
    client.force_login(buyer)
    response = _post(client, django_capture_on_commit_callbacks, entitlement, rows="5000")
    page = client.get(response["Location"]).content.decode()
    assert "The model stopped with an error. — nothing was taken from your quota." in page
    assert rows_left(entitlement) == 5000


def test_only_the_entitlements_buyer_opens_its_draw_page(
    client: Any, provider: Any, entitlement: Any
) -> None:
    client.force_login(provider)
    assert client.get(f"/library/{entitlement.id}/draws/").status_code == 404


def test_conditions_are_read_as_json_values_or_text() -> None:
    assert parse_conditions("age=40\nsex = Female\n\nflag=true") == {"age": 40, "sex": "Female", "flag": True}
    with pytest.raises(FormError):
        parse_conditions("=3")
