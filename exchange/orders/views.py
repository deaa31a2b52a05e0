"""Buyer and provider pages: buy, checkout (local test-card form or Stripe.js), order history, refunds, sales."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from exchange.downloads.constants import FORMATS
from exchange.orders import payouts, selectors, services
from exchange.orders import stripe_gateway as gateway
from exchange.orders.models import Order
from marketplace.accounts.models import Organization, User
from marketplace.catalog.models import FileRole

# The test payment methods the local-mode checkout offers (Stripe's names; see stripe_gateway).
LOCAL_TEST_METHODS = [
    ("pm_card_visa", "Visa 4242 4242 4242 4242: succeeds"),
    ("pm_card_chargeCustomerFail", "Card 4000 0000 0000 0341: declined"),
    ("pm_card_threeDSecure2Required", "Card 4000 0027 6000 3184: asks for 3-D Secure"),
]


def _signed_in(request: Any) -> User:
    """The request's user; every view here requires a login (or staff), so it is never anonymous."""
    return cast(User, request.user)


def _order_or_404(request: HttpRequest, order_id: str) -> Order:
    order = selectors.order_for(_signed_in(request), order_id)
    if order is None:
        raise Http404("No such order.")
    return order


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


@login_required
@require_POST
def order_create(request: HttpRequest) -> HttpResponse:
    """The product page's Buy button: open (or reuse) the order at the price shown, then go to checkout."""
    back = request.POST.get("next") or reverse("catalog:home")
    version_id = _int_or_none(request.POST.get("version"))
    if version_id is None:
        messages.error(request, "Choose a version to buy.")
        return redirect(back)
    try:
        result = services.create_order(
            buyer=_signed_in(request),
            version_id=version_id,
            license_code=request.POST.get("license", ""),
            expected_price_minor=_int_or_none(request.POST.get("price_minor")),
            expected_currency=request.POST.get("currency") or None,
        )
    except services.OrderError as error:
        messages.error(request, error.message)
        return redirect(back)
    return redirect("exchange:order", result.order.id)


@login_required
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    order = _order_or_404(request, order_id)
    payment = getattr(order, "payment", None)
    return render(
        request,
        "orders/order_detail.html",
        {
            "order": order,
            "payment": payment,
            "local_mode": gateway.is_local_mode(),
            "test_methods": LOCAL_TEST_METHODS,
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "refund_refusal": services.buyer_refund_refusal(order, _signed_in(request))
            if order.status == "paid"
            else "",
            "refund_window_days": settings.SYNTHEX_REFUND_WINDOW_DAYS,
            "downloads": _downloads(order),
            "formats": FORMATS,
        },
    )


def _downloads(order: Order) -> list[Any]:
    """The synthetic files a paid order's active entitlement downloads (shown first on the order page)."""
    entitlement = order.entitlement
    if order.status != Order.Status.PAID or entitlement is None or not entitlement.is_active:
        return []
    return list(order.version.files.filter(role=FileRole.SYNTHETIC).order_by("table_name"))


@login_required
@require_POST
def order_pay(request: HttpRequest, order_id: str) -> HttpResponse:
    """Local mode: confirm with the chosen test payment method."""
    order = _order_or_404(request, order_id)
    method = request.POST.get("payment_method", "")
    if method not in dict(LOCAL_TEST_METHODS):
        messages.error(request, "Choose one of the test cards.")
        return redirect("exchange:order", order.id)
    try:
        intent = services.confirm_locally(order, method)
    except services.OrderError as error:
        messages.error(request, error.message)
        return redirect("exchange:order", order.id)
    if intent.status == "succeeded":
        messages.success(request, "Payment received. Your data is ready.")
    elif intent.requires_action:
        messages.info(request, "Your bank asks you to confirm this payment (3-D Secure).")
    return redirect("exchange:order", order.id)


@login_required
@require_POST
def order_authenticate(request: HttpRequest, order_id: str) -> HttpResponse:
    order = _order_or_404(request, order_id)
    try:
        services.authenticate_locally(order, success=request.POST.get("success") == "1")
    except services.OrderError as error:
        messages.error(request, error.message)
    return redirect("exchange:order", order.id)


@login_required
@require_POST
def order_refund(request: HttpRequest, order_id: str) -> HttpResponse:
    order = _order_or_404(request, order_id)
    try:
        refund = services.request_buyer_refund(
            order, _signed_in(request), reason=request.POST.get("reason", "")
        )
    except services.OrderError as error:
        messages.error(request, error.message)
    else:
        if refund.status == "succeeded":
            messages.success(request, "Refunded. The money is on its way back to your card.")
        else:
            messages.info(request, "Your refund is being processed.")
    return redirect("exchange:order", order.id)


@login_required
def order_list(request: HttpRequest) -> HttpResponse:
    return render(request, "orders/order_list.html", {"orders": selectors.orders_of(_signed_in(request))})


@login_required
def sales(request: HttpRequest) -> HttpResponse:
    """A provider's sales, fees, payable balance and payouts, per organization they belong to."""
    organizations = [
        {
            "organization": organization,
            "summary": selectors.sales_summary(organization),
            "sales": selectors.sales_of(organization)[:100],
            "payouts": selectors.payouts_of(organization)[:50],
            "payout_account": getattr(organization, "payout_account", None),
        }
        for organization in _signed_in(request).provider_organizations()
    ]
    return render(request, "orders/sales.html", {"organizations": organizations})


def _owned_organization(request: HttpRequest, slug: str) -> Organization:
    organization = _signed_in(request).provider_organizations().filter(slug=slug).first()
    if organization is None:
        raise Http404("No such provider organization of yours.")
    return organization


_ONBOARDING_SESSION_KEY = "payout_onboarding"


@login_required
@require_POST
def payout_onboarding_start(request: HttpRequest, slug: str) -> HttpResponse:
    """ "Set up payouts": Stripe's hosted Connect onboarding (a local stand-in page in local mode)."""
    organization = _owned_organization(request, slug)
    try:
        account_id = payouts.start_payout_onboarding(organization, user=_signed_in(request))
        if account_id is None:
            return redirect("exchange:payout_onboarding_local", slug=slug)
        # The account id stays server-side: the return page links only the account this session created.
        request.session[_ONBOARDING_SESSION_KEY] = {slug: account_id}
        url = payouts.onboarding_link(
            account_id,
            refresh_url=request.build_absolute_uri(
                reverse("exchange:payout_onboarding_refresh", args=[slug])
            ),
            return_url=request.build_absolute_uri(reverse("exchange:payout_onboarding_return", args=[slug])),
        )
    except payouts.OnboardingRefused as error:
        messages.error(request, error.message)
        return redirect("exchange:sales")
    except gateway.GatewayError as error:
        messages.error(request, f"Stripe could not start onboarding: {error}")
        return redirect("exchange:sales")
    return redirect(url)


@login_required
def payout_onboarding_refresh(request: HttpRequest, slug: str) -> HttpResponse:
    """Stripe's ``refresh_url`` (the link expired): a fresh link for the same account."""
    _owned_organization(request, slug)
    account_id = (request.session.get(_ONBOARDING_SESSION_KEY) or {}).get(slug)
    if not account_id:
        return redirect("exchange:sales")
    url = payouts.onboarding_link(
        account_id,
        refresh_url=request.build_absolute_uri(reverse("exchange:payout_onboarding_refresh", args=[slug])),
        return_url=request.build_absolute_uri(reverse("exchange:payout_onboarding_return", args=[slug])),
    )
    return redirect(url)


@login_required
def payout_onboarding_return(request: HttpRequest, slug: str) -> HttpResponse:
    """Stripe's ``return_url``: link the account once its holder finished onboarding."""
    organization = _owned_organization(request, slug)
    account_id = (request.session.get(_ONBOARDING_SESSION_KEY) or {}).get(slug)
    if not account_id:
        messages.error(request, "No payout onboarding in progress; start it again.")
        return redirect("exchange:sales")
    try:
        linked = payouts.finish_payout_onboarding(
            organization, user=_signed_in(request), account_id=account_id
        )
    except (payouts.OnboardingRefused, gateway.GatewayError) as error:
        messages.error(request, str(error))
        return redirect("exchange:sales")
    if linked is None:
        messages.info(
            request, "Stripe still needs some details before payouts can start: continue onboarding."
        )
    else:
        request.session.pop(_ONBOARDING_SESSION_KEY, None)
        messages.success(request, f"Payouts for {organization.name} now go to your Stripe account.")
    return redirect("exchange:sales")


@login_required
def payout_onboarding_local(request: HttpRequest, slug: str) -> HttpResponse:
    """Local mode's stand-in for Stripe's hosted Connect onboarding."""
    organization = _owned_organization(request, slug)
    if request.method == "POST":
        try:
            account = payouts.link_local_payout_account(organization, user=_signed_in(request))
        except payouts.OnboardingRefused as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                f"Payouts for {organization.name} now go to test account {account.stripe_account_id}.",
            )
        return redirect("exchange:sales")
    return render(request, "orders/payout_onboarding_local.html", {"organization": organization})
