"""The ledger explorer's Verify: an entry newer than the latest signed head shows as pending, not as a failure
(issue 17 #11); one the head covers verifies in the browser."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def purge_ledger_after() -> Any:
    from django.db import connection

    from exchange.ledger.schema import purge_ledger

    yield
    purge_ledger(connection)  # the ledger's triggers refuse the live server's flush


def _sale(number: int) -> int:
    from exchange.ledger.services import Posting, account_for, post_transaction
    from marketplace.accounts.models import Organization

    organization, _ = Organization.objects.get_or_create(
        slug="ledger-org", name="Ledger Org", is_provider=True
    )
    transaction = post_transaction(
        idempotency_key=f"sale:{number}",
        kind="sale",
        postings=[
            Posting(account_for("stripe_clearing", "EUR"), 1000),
            Posting(account_for("provider_payable", "EUR", organization), -800),
            Posting(account_for("platform_fee_revenue", "EUR"), -200),
        ],
        refs={"order": f"ord_{number}"},
    )
    return transaction.pk


def test_an_entry_after_the_signed_head_is_pending_not_failed(
    live_server: Any, page: Any, screenshot: Any, user_factory: Any, purge_ledger_after: Any
) -> None:
    from exchange.ledger.services import publish_tree_head

    auditor = user_factory("auditor", is_auditor=True)
    covered = _sale(1)
    publish_tree_head(force=True)
    pending = _sale(2)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", auditor.username)
    page.fill("#id_password", "correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/(accounts/profile/)?$"))
    page.goto(f"{live_server.url}/ledger/")
    page.click(f'.ledger-verify[data-index="{pending}"]')
    result = page.locator(f"#verify-{pending}")
    result.filter(has_text="pending").wait_for()
    assert "✘" not in result.inner_text()
    assert "fail" not in (result.get_attribute("class") or "")
    assert "pending" in (result.get_attribute("class") or "")
    page.click(f'.ledger-verify[data-index="{covered}"]')
    page.locator(f"#verify-{covered}").filter(has_text="✔ in the signed tree").wait_for()
    screenshot("70-ledger-pending-entry")
