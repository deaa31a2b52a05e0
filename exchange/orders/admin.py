"""Staff tools: orders with full/partial refunds, webhook events, refunds, Connect accounts, payout runs."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from exchange.orders import payouts, services
from exchange.orders.models import Order, Payment, Payout, PayoutAccount, PayoutRun, Refund, WebhookEvent
from marketplace.accounts.models import User


def _signed_in(request: Any) -> User:
    """The request's user; every view here requires a login (or staff), so it is never anonymous."""
    return cast(User, request.user)


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RefundForm(forms.Form):
    amount_minor = forms.IntegerField(
        min_value=1, help_text="In minor units (cents); empty for the whole rest.", required=False
    )
    reason = forms.CharField(max_length=300, required=False)


@admin.register(Order)
class OrderAdmin(_ReadOnlyAdmin):
    list_display = [
        "id",
        "buyer",
        "product",
        "license_code",
        "amount_minor",
        "currency",
        "refunded_minor",
        "status",
        "created_at",
    ]
    list_filter = ["status", "currency"]
    search_fields = ["id", "buyer__username", "product__slug", "payment__stripe_payment_intent_id"]
    actions = ["refund_in_full"]
    change_form_template = "orders/admin_order_change_form.html"

    def get_urls(self) -> list[Any]:
        extra = [
            path(
                "<str:order_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="orders_order_refund",
            )
        ]
        return extra + super().get_urls()

    def refund_view(self, request: HttpRequest, order_id: str) -> HttpResponse:
        order = get_object_or_404(Order, pk=order_id)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = services.refund_order(
                    order,
                    amount_minor=form.cleaned_data["amount_minor"],
                    initiator=Refund.Initiator.STAFF,
                    requested_by=_signed_in(request),
                    reason=form.cleaned_data["reason"],
                )
            except services.OrderError as error:
                messages.error(request, error.message)
            else:
                messages.success(
                    request, f"Refund {refund.id}: {refund.amount_minor} {refund.currency}, {refund.status}."
                )
                return redirect(reverse("admin:orders_order_change", args=[order.pk]))
        context = {
            **self.admin_site.each_context(request),
            "order": order,
            "form": form,
            "title": f"Refund {order.id}",
        }
        return render(request, "orders/admin_refund.html", context)

    @admin.action(description="Refund the selected orders in full")
    def refund_in_full(self, request: HttpRequest, queryset: Any) -> None:
        for order in queryset:
            try:
                services.refund_order(
                    order,
                    amount_minor=None,
                    initiator=Refund.Initiator.STAFF,
                    requested_by=_signed_in(request),
                )
            except services.OrderError as error:
                messages.error(request, f"{order.id}: {error.message}")
            else:
                messages.success(request, f"{order.id} refunded.")


@admin.register(Payment)
class PaymentAdmin(_ReadOnlyAdmin):
    list_display = [
        "order",
        "stripe_payment_intent_id",
        "stripe_status",
        "amount_minor",
        "currency",
        "last_error",
    ]
    search_fields = ["stripe_payment_intent_id", "order__id"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(_ReadOnlyAdmin):
    list_display = ["stripe_event_id", "type", "status", "detail", "received_at"]
    list_filter = ["status", "type"]
    search_fields = ["stripe_event_id", "object_id"]


@admin.register(Refund)
class RefundAdmin(_ReadOnlyAdmin):
    list_display = ["id", "order", "amount_minor", "currency", "initiator", "status", "created_at"]
    list_filter = ["status", "initiator"]


@admin.register(PayoutAccount)
class PayoutAccountAdmin(admin.ModelAdmin):
    list_display = ["organization", "stripe_account_id", "created_at"]


class PayoutInline(admin.TabularInline):
    model = Payout
    extra = 0
    can_delete = False
    readonly_fields = fields = (
        "id", "organization", "amount_minor", "currency", "status", "stripe_transfer_id", "error",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PayoutRun)
class PayoutRunAdmin(_ReadOnlyAdmin):
    list_display = ["pk", "created_at", "created_by", "finished_at"]
    inlines = [PayoutInline]
    change_list_template = "orders/admin_payoutrun_change_list.html"

    def get_urls(self) -> list[Any]:
        extra = [path("start/", self.admin_site.admin_view(self.start_view), name="orders_payoutrun_start")]
        return extra + super().get_urls()

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return redirect(reverse("admin:orders_payoutrun_changelist"))
        run = payouts.start_payout_run(created_by=_signed_in(request))
        results = list(run.payouts.values_list("status", flat=True))
        messages.success(
            request,
            f"Payout run {run.pk}: {results.count('paid')} paid, {results.count('pending')} pending, {results.count('failed')} failed.",
        )
        return redirect(reverse("admin:orders_payoutrun_change", args=[run.pk]))


@admin.register(Payout)
class PayoutAdmin(_ReadOnlyAdmin):
    list_display = [
        "id",
        "organization",
        "amount_minor",
        "currency",
        "status",
        "stripe_transfer_id",
        "created_at",
    ]
    list_filter = ["status", "currency"]
