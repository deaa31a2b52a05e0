"""``synthex buy``, ``receipt get|verify`` and ``ledger verify`` against a live server and localstripe."""

from __future__ import annotations

import json

import pytest

from exchange.orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


def test_buy_pays_with_a_test_card_and_the_receipt_verifies(
    cli, local_payments, provider, buyer, token_for, certified_factory, tmp_path
):
    version, _ = certified_factory(provider)
    token = token_for(buyer)
    bought = cli("buy", version.pk, "--license", "standard", "--json", token=token)
    assert bought.code == 0, bought.err + bought.out
    order = bought.json()
    assert (order["status"], order["amount_minor"], order["currency"]) == ("paid", 2500, "USD")
    assert order["entitlement"].startswith("ent_")
    assert [e["id"] for e in cli("entitlements", "--json", token=token).json()] == [order["entitlement"]]

    verified = cli("receipt", "verify", order["id"], token=token)
    assert verified.code == 0, verified.err
    assert "OK: every check holds" in verified.out
    saved = tmp_path / "receipt.json"
    assert cli("receipt", "get", order["id"], "-o", saved, token=token).code == 0
    assert cli("receipt", "verify", saved).code == 0
    receipt = json.loads(saved.read_text())
    receipt["entries"][0]["leaf"] = receipt["entries"][-1]["leaf"] if len(receipt["entries"]) > 1 else "AAAA"
    receipt["amount_minor"] = 1
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(receipt))
    refused = cli("receipt", "verify", forged, "--json")
    assert refused.code == 1
    assert refused.json()["ok"] is False


def test_declined_card_exits_3_and_grants_nothing(
    cli, local_payments, provider, buyer, token_for, certified_factory
):
    version, _ = certified_factory(provider)
    declined = cli(
        "buy",
        version.pk,
        "--license",
        "standard",
        "--payment-method",
        "pm_card_chargeCustomerFail",
        token=token_for(buyer),
    )
    assert declined.code == 3
    assert "code card_declined)" in declined.err
    assert list(Order.objects.values_list("status", flat=True)) == ["pending"]
    assert cli("entitlements", "--json", token=token_for(buyer)).json() == []
    # Issue 17 #6: the same order is still payable, with another card.
    again = cli("buy", version.pk, "--license", "standard", "--json", token=token_for(buyer))
    assert again.code == 0, again.err
    assert list(Order.objects.values_list("status", flat=True)) == ["paid"]


def test_ledger_verify_checks_heads_and_remembers_the_last_one(
    cli, server, local_payments, provider, buyer, token_for, certified_factory, tmp_path
):
    from exchange.ledger.services import publish_tree_head

    assert cli("ledger", "verify").code == 1  # nothing published yet
    version, _ = certified_factory(provider)
    assert cli("buy", version.pk, "--license", "standard", token=token_for(buyer)).code == 0
    publish_tree_head()
    second, _ = certified_factory(provider, price_minor=900)
    assert cli("buy", second.pk, "--license", "standard", token=token_for(buyer)).code == 0
    publish_tree_head()
    first_run = cli("ledger", "verify", "--json")
    assert first_run.code == 0, first_run.out
    body = first_run.json()
    assert body["heads"] == 2
    assert "2 of 2 tree heads are validly signed" in body["checked"]
    assert "1 consistency proofs between successive heads hold" in body["checked"]
    state = tmp_path / "synthex" / "ledger-heads.json"
    remembered = json.loads(state.read_text())
    assert list(remembered) == [server]
    publish_tree_head(force=True)
    again = cli("ledger", "verify", "--json")
    assert again.code == 0
    assert any(
        note.startswith("the newest head extends the one verified last time")
        for note in again.json()["checked"]
    )
    # A remembered head the server's log does not extend (here: a forged one) is reported.
    lines = remembered[server].split("\n")
    lines[1] = str(int(lines[1]) + 1)
    state.write_text(json.dumps({server: "\n".join(lines)}))
    forged = cli("ledger", "verify", "--json")
    assert forged.code == 1
    assert forged.json()["failures"][0].startswith("The tree head verified last time no longer verifies")
