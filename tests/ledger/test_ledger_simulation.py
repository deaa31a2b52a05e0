"""A seeded simulation: 10,000 random sales, refunds, payouts and events with duplicates, conflicting
replays and injected crashes; the audit stays clean and every balance equals an independent model's."""

import random
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction

from exchange.ledger import services
from exchange.ledger.audit import run_audit
from exchange.ledger.models import AccountBalance, LogState
from exchange.ledger.services import LedgerError, Posting, account_for, post_transaction, record_event
from exchange.money import split
from marketplace.accounts.models import Organization

OPERATIONS = 10_000
FEE_RATE = Decimal("0.2")
CURRENCIES = ("EUR", "USD")
NEVER_NEGATIVE = {"provider_payable": -1, "provider_paid_out": 1, "platform_fee_revenue": -1, "refunds": 1}


class Crash(Exception):
    pass


class Model:
    """Plain-Python books: debit-positive balances keyed by (kind, currency, organization slug)."""

    def __init__(self):
        self.balances = defaultdict(int)
        self.posted = {}
        self.events = {}
        self.entries = 0

    def accepts(self, legs):
        after = defaultdict(int, self.balances)
        for key, amount in legs:
            after[key] += amount
        for (kind, _currency, _organization), balance in after.items():
            if kind in NEVER_NEGATIVE and NEVER_NEGATIVE[kind] * balance < 0:
                return False
        for organization in {key[2] for key, _ in legs if key[2]}:
            for currency in CURRENCIES:
                payable = after[("provider_payable", currency, organization)]
                paid_out = after[("provider_paid_out", currency, organization)]
                if -payable - paid_out < 0:
                    return False
        return True

    def apply(self, key, legs):
        for account, amount in legs:
            self.balances[account] += amount
        self.posted[key] = sorted(legs)
        self.entries += 1


@pytest.mark.slow
def test_random_operations_match_an_independent_model(db, monkeypatch):
    rng = random.Random(20261124)
    organizations = {
        slug: Organization.objects.create(slug=slug, name=slug, is_provider=True)
        for slug in ("ann", "bo", "cy")
    }
    accounts = {}

    def account(key):
        if key not in accounts:
            kind, currency, organization = key
            accounts[key] = account_for(kind, currency, organizations.get(organization))
        return accounts[key]

    model = Model()
    sales = []
    history = []
    start_size = LogState.objects.get(pk=1).size
    real_append = services._Log.append

    def post(key, kind, legs, crash=None):
        legs = [(account_key, amount) for account_key, amount in legs if amount]
        opened = len(accounts)
        postings = [Posting(account(account_key), amount) for account_key, amount in legs]
        if key in model.posted:
            if model.posted[key] == sorted(legs):
                assert post_transaction(idempotency_key=key, kind=kind, postings=postings).kind == kind
            else:
                with pytest.raises(LedgerError, match="idempotency key reused"):
                    post_transaction(idempotency_key=key, kind=kind, postings=postings)
            return False
        model.entries += len(accounts) - opened
        accepted = model.accepts(legs)
        if crash == "after" and accepted:
            with pytest.raises(Crash), transaction.atomic():
                post_transaction(idempotency_key=key, kind=kind, postings=postings)
                raise Crash
            return False
        if crash == "inside" and accepted:

            def broken(self, entry_type, canonical):
                raise Crash

            monkeypatch.setattr(services._Log, "append", broken)
            try:
                with pytest.raises(Crash):
                    post_transaction(idempotency_key=key, kind=kind, postings=postings)
            finally:
                monkeypatch.setattr(services._Log, "append", real_append)
            return False
        if accepted:
            post_transaction(idempotency_key=key, kind=kind, postings=postings)
            model.apply(key, legs)
            history.append((key, kind, legs))
            return True
        with pytest.raises(LedgerError):
            post_transaction(idempotency_key=key, kind=kind, postings=postings)
        return False

    for number in range(OPERATIONS):
        roll = rng.random()
        crash = rng.choice(["after", "inside"]) if rng.random() < 0.03 else None
        if roll < 0.40 or not sales:
            currency, organization = rng.choice(CURRENCIES), rng.choice(list(organizations))
            amount = rng.randrange(100, 20_000)
            fee, share = split(amount, FEE_RATE)
            legs = [
                (("stripe_clearing", currency, None), amount),
                (("platform_fee_revenue", currency, None), -fee),
                (("provider_payable", currency, organization), -share),
            ]
            if post(f"sale:{number}", "sale", legs, crash):
                sales.append([currency, organization, amount, amount, number])
        elif roll < 0.55:
            sale = rng.choice(sales)
            currency, organization, _amount, remaining, sale_number = sale
            if remaining == 0:
                continue
            refund = rng.randrange(1, remaining + 1)
            fee, share = split(refund, FEE_RATE)
            legs = [
                (("stripe_clearing", currency, None), -refund),
                (("platform_fee_revenue", currency, None), fee),
                (("provider_payable", currency, organization), share),
            ]
            if post(f"refund:{sale_number}:{number}", "refund", legs, crash):
                sale[3] -= refund
        elif roll < 0.70:
            currency, organization = rng.choice(CURRENCIES), rng.choice(list(organizations))
            owed = (
                -model.balances[("provider_payable", currency, organization)]
                - model.balances[("provider_paid_out", currency, organization)]
            )
            amount = rng.randrange(1, max(owed, 1) + 200)
            legs = [
                (("provider_paid_out", currency, organization), amount),
                (("stripe_clearing", currency, None), -amount),
            ]
            post(f"payout:{number}", "payout", legs, crash)
        elif roll < 0.82:
            key = f"event:{rng.randrange(number + 1)}"
            refs = {"entitlement": f"ent_{key.split(':')[1]}"}
            record_event(idempotency_key=key, kind="download", refs=refs)
            if key not in model.events:
                model.events[key] = refs
                model.entries += 1
        elif history:
            key, kind, legs = rng.choice(history)
            if rng.random() < 0.8:
                post(key, kind, legs)
            else:
                changed = [(legs[0][0], legs[0][1] + 1), (legs[1][0], legs[1][1] - 1), *legs[2:]]
                post(key, kind, changed)

    stored = {
        key: AccountBalance.objects.get(pk=account_row.pk).balance_minor
        for key, account_row in accounts.items()
    }
    assert stored == {key: model.balances[key] for key in accounts}
    assert LogState.objects.get(pk=1).size == start_size + model.entries
    services.publish_tree_head()
    report = run_audit()
    assert report.ok, report.text()
    assert len(history) > 3000
