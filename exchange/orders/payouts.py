"""Provider payouts: what each organization is owed, payout runs, and Stripe Connect transfers.

An organization's payable balance in a currency is the provider share of its paid orders, less the
provider part of succeeded refunds, less payouts that are pending or paid. A payout run turns every
positive balance of an organization with a Connect account into one :class:`Payout` (committed with its
idempotency key first), then transfers it; a paid transfer posts provider paid-out debit / Stripe clearing
credit. A transfer Stripe could not be reached for stays pending and is retried with the same key.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from exchange.ledger.services import Posting, account_for, post_transaction
from exchange.orders import stripe_gateway as gateway
from exchange.orders.models import Order, Payout, PayoutAccount, PayoutRun, Refund
from marketplace.accounts.models import Membership, Organization, User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Balance:
    """An organization's payable balance in one currency, in minor units."""

    organization_id: int
    currency: str
    amount_minor: int


def payable_balances(organization: Organization | None = None) -> list[Balance]:
    """Every (organization, currency) balance still owed to providers, zero and negative ones included."""
    totals: dict[tuple[int, str], int] = defaultdict(int)
    sales = Order.objects.filter(paid_at__isnull=False, provider_share_minor__gt=0)
    refunds = Refund.objects.filter(status=Refund.Status.SUCCEEDED)
    paid_out = Payout.objects.filter(status__in=[Payout.Status.PENDING, Payout.Status.PAID])
    if organization is not None:
        sales = sales.filter(seller=organization)
        refunds = refunds.filter(order__seller=organization)
        paid_out = paid_out.filter(organization=organization)
    for row in sales.values("seller_id", "currency").annotate(total=Sum("provider_share_minor")):
        totals[(row["seller_id"], row["currency"])] += row["total"]
    for row in refunds.values("order__seller_id", "currency").annotate(
        total=Sum(F("provider_share_minor") - F("platform_covered_minor"))
    ):
        totals[(row["order__seller_id"], row["currency"])] -= row["total"]
    for row in paid_out.values("organization_id", "currency").annotate(total=Sum("amount_minor")):
        totals[(row["organization_id"], row["currency"])] -= row["total"]
    return [Balance(org, currency, amount) for (org, currency), amount in sorted(totals.items())]


class OnboardingRefused(Exception):
    """A provider may not (or need not) start payout onboarding; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _check_can_onboard(organization: Organization, user: User) -> None:
    if not organization.is_provider:
        raise OnboardingRefused(f"{organization.name} is not a provider organization.")
    is_owner = organization.memberships.filter(user=user, role=Membership.Role.OWNER).exists()
    if not (is_owner or user.is_staff):
        raise OnboardingRefused(f"Only an owner of {organization.name} can set where its payouts go.")
    if PayoutAccount.objects.filter(organization=organization).exists():
        raise OnboardingRefused(f"{organization.name} already has a payout account.")


def start_payout_onboarding(organization: Organization, *, user: User) -> str | None:
    """Begin Stripe Connect onboarding for ``organization`` (its owners, or staff): with real Stripe, create an
    Express account and return its id (the caller sends the owner to :func:`onboarding_link`); in local mode
    return None (a stand-in page finishes with :func:`link_local_payout_account`)."""
    _check_can_onboard(organization, user)
    if gateway.is_local_mode():
        return None
    account = gateway.create_connect_account(email=user.email, organization_name=organization.name)
    return account.id


def onboarding_link(account_id: str, *, refresh_url: str, return_url: str) -> str:
    """Stripe's hosted onboarding page for the account (a fresh link each time: they are single use)."""
    return gateway.create_account_link(account_id=account_id, refresh_url=refresh_url, return_url=return_url)


def finish_payout_onboarding(
    organization: Organization, *, user: User, account_id: str
) -> PayoutAccount | None:
    """Link the Connect account once Stripe says its holder finished onboarding; None while they have not.
    ``account_id`` must come from :func:`start_payout_onboarding` for this organization (kept server-side)."""
    _check_can_onboard(organization, user)
    if not gateway.retrieve_connect_account(account_id).details_submitted:
        return None
    return PayoutAccount.objects.create(organization=organization, stripe_account_id=account_id)


def link_local_payout_account(organization: Organization, *, user: User) -> PayoutAccount:
    """Local mode's stand-in for Stripe's hosted onboarding: a test Connect account id that localstripe's
    transfer endpoint accepts, so payout runs reach the provider as in production."""
    if not gateway.is_local_mode():
        raise OnboardingRefused("Payout accounts are linked through Stripe's onboarding.")
    _check_can_onboard(organization, user)
    return PayoutAccount.objects.create(
        organization=organization, stripe_account_id=f"acct_local_{secrets.token_hex(8)}"
    )


def start_payout_run(*, created_by: User | None = None) -> PayoutRun:
    """Create one payout per positive balance of an organization with a Connect account, then send them.

    The balances are read and the payouts written in one transaction, so two runs at once cannot pay the
    same balance twice (the second sees the first's pending payouts).
    """
    with transaction.atomic():
        run = PayoutRun.objects.create(created_by=created_by)
        accounts = {a.organization_id: a.stripe_account_id for a in PayoutAccount.objects.select_for_update()}
        for balance in payable_balances():
            destination = accounts.get(balance.organization_id)
            if balance.amount_minor <= 0 or destination is None:
                continue
            payout_id = f"po_{secrets.token_hex(12)}"
            Payout.objects.create(
                id=payout_id,
                run=run,
                organization_id=balance.organization_id,
                destination=destination,
                amount_minor=balance.amount_minor,
                currency=balance.currency,
                idempotency_key=f"transfer:{payout_id}",
            )
    for payout in run.payouts.all():
        send_payout(payout)
    PayoutRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    run.refresh_from_db()
    return run


def send_payout(payout: Payout) -> Payout:
    """Transfer a pending payout with its saved key and apply the result; safe to call again."""
    if payout.status != Payout.Status.PENDING:
        return payout
    try:
        transfer = gateway.create_transfer(
            amount_minor=payout.amount_minor,
            currency=payout.currency,
            destination=payout.destination,
            idempotency_key=payout.idempotency_key,
            metadata={"synthex_payout": payout.id},
        )
    except gateway.GatewayUnavailable as error:
        logger.warning("stripe unreachable for payout %s; it stays pending: %s", payout.id, error)
        return payout
    except gateway.GatewayError as error:
        logger.error("stripe refused payout %s: %s", payout.id, error)
        Payout.objects.filter(pk=payout.pk, status=Payout.Status.PENDING).update(
            status=Payout.Status.FAILED, error=str(error)[:300]
        )
        payout.refresh_from_db()
        return payout
    apply_payout_paid(payout, transfer.id)
    payout.refresh_from_db()
    return payout


def apply_payout_paid(payout: Payout, transfer_id: str) -> bool:
    """Record a made transfer once: payout paid, provider paid-out debit / Stripe clearing credit."""
    with transaction.atomic():
        changed = Payout.objects.filter(pk=payout.pk, status=Payout.Status.PENDING).update(
            status=Payout.Status.PAID, stripe_transfer_id=transfer_id, paid_at=timezone.now()
        )
        if not changed:
            return False
        organization = Organization.objects.get(pk=payout.organization_id)
        post_transaction(
            idempotency_key=f"payout:{payout.id}",
            kind="payout",
            postings=[
                Posting(account_for("provider_paid_out", payout.currency, organization), payout.amount_minor),
                Posting(account_for("stripe_clearing", payout.currency), -payout.amount_minor),
            ],
            refs={"payout": payout.id, "transfer": transfer_id},
            memo="Connect transfer to the provider",
        )
    return True


def apply_transfer_reversed(transfer_id: str, amount_reversed_minor: int) -> str:
    """Undo a paid payout whose transfer Stripe reversed in full; returns a line saying what happened.

    Partial reversals are not applied (they are refused and logged for staff to handle by hand).
    """
    payout = Payout.objects.filter(stripe_transfer_id=transfer_id).first()
    if payout is None:
        logger.warning("reversal of unknown transfer %s refused", transfer_id)
        return f"unknown transfer {transfer_id}"
    if amount_reversed_minor != payout.amount_minor:
        logger.error(
            "partial reversal of transfer %s (%s of %s) needs staff",
            transfer_id,
            amount_reversed_minor,
            payout.amount_minor,
        )
        return f"partial reversal of {transfer_id} not applied"
    with transaction.atomic():
        changed = Payout.objects.filter(pk=payout.pk, status=Payout.Status.PAID).update(
            status=Payout.Status.REVERSED
        )
        if changed:
            organization = Organization.objects.get(pk=payout.organization_id)
            post_transaction(
                idempotency_key=f"payout.reversed:{payout.id}",
                kind="payout.reversed",
                postings=[
                    Posting(account_for("stripe_clearing", payout.currency), payout.amount_minor),
                    Posting(
                        account_for("provider_paid_out", payout.currency, organization), -payout.amount_minor
                    ),
                ],
                refs={"payout": payout.id, "transfer": transfer_id},
                memo="Connect transfer reversed",
            )
    return f"payout {payout.id} {'reversed' if changed else 'already reversed'}"


def retry_pending_payouts() -> int:
    """Send every pending payout again with its own key; returns how many are now paid."""
    paid = 0
    for payout in Payout.objects.filter(status=Payout.Status.PENDING):
        paid += send_payout(payout).status == Payout.Status.PAID
    return paid
