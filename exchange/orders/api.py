"""Orders API (names in DESIGN.md): create/list/read orders, local-mode confirm, refund requests, receipts,
and the Stripe webhook endpoint. Views parse, check permission, call one service and serialize."""

from __future__ import annotations

import logging
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.orders import selectors, services
from exchange.orders import stripe_gateway as gateway
from exchange.orders.models import Order
from exchange.orders.webhooks import receive_event
from marketplace.accounts.models import User
from marketplace.core.api import ApiError
from marketplace.core.schema import ERRORS, SIGNED_DOCUMENT

logger = logging.getLogger(__name__)


def _signed_in(request: Any) -> User:
    """The request's user; every view here requires a login (or staff), so it is never anonymous."""
    return cast(User, request.user)


def _refused(error: services.OrderError) -> Response:
    """The API error shape ``{"detail", "code"}`` plus any facts the service attached (e.g. the new price)."""
    return Response({"detail": error.message, "code": error.code, **error.extra}, status=error.status)


class OrderCreateInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    license = serializers.CharField(max_length=20)
    price_minor = serializers.IntegerField(min_value=0, required=False, help_text="The price the buyer saw.")
    currency = serializers.CharField(min_length=3, max_length=3, required=False)


class OrderOutput(serializers.ModelSerializer):
    product = serializers.CharField(source="product.slug")
    version = serializers.IntegerField(source="version.number")
    version_id = serializers.IntegerField()
    license = serializers.CharField(source="license_code")
    entitlement = serializers.CharField(source="entitlement_id", allow_null=True)
    payment = serializers.SerializerMethodField()
    receipt_url = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id", "status", "product", "version", "version_id", "license", "amount_minor", "currency",
            "platform_fee_minor", "provider_share_minor", "refunded_minor", "entitlement", "created_at",
            "paid_at", "payment", "receipt_url",
        ]  # fmt: skip

    def get_payment(self, order: Order) -> dict[str, Any] | None:
        payment = getattr(order, "payment", None)
        if payment is None:
            return None
        return {
            "payment_intent": payment.stripe_payment_intent_id,
            "client_secret": payment.client_secret if order.status == Order.Status.PENDING else None,
            "status": payment.stripe_status,
            "requires_action": payment.stripe_status == "requires_action",
            "last_error": payment.last_error,
            "local_mode": gateway.is_local_mode(),
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY or None,
        }

    def get_receipt_url(self, order: Order) -> str | None:
        return f"/api/v1/receipts/{order.id}/" if order.paid_at else None


def _order(request: Request, order_id: str) -> Order:
    order = selectors.order_for(_signed_in(request), order_id)
    if order is None:
        raise ApiError("No such order.", "not_found", status.HTTP_404_NOT_FOUND)
    return order


def _output(order_id: str, status_code: int = status.HTTP_200_OK) -> Response:
    order = Order.objects.select_related("product", "version", "payment", "entitlement").get(pk=order_id)
    return Response(OrderOutput(order).data, status=status_code)


class OrderListCreate(APIView):
    """`GET`: your orders. `POST` {version, license, price_minor?, currency?}: an order with its Stripe
    client secret (201 when created, 200 when your open order for the same item is returned)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="orders_list", responses={200: OrderOutput(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        return Response(OrderOutput(selectors.orders_of(_signed_in(request)), many=True).data)

    @extend_schema(request=OrderCreateInput, responses={201: OrderOutput, 200: OrderOutput, **ERRORS})
    def post(self, request: Request) -> Response:
        values = OrderCreateInput(data=request.data)
        values.is_valid(raise_exception=True)
        data = values.validated_data
        try:
            result = services.create_order(
                buyer=_signed_in(request),
                version_id=data["version"],
                license_code=data["license"],
                expected_price_minor=data.get("price_minor"),
                expected_currency=data.get("currency"),
            )
        except services.OrderError as error:
            return _refused(error)
        return _output(result.order.id, status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class OrderDetail(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OrderOutput, **ERRORS})
    def get(self, request: Request, order_id: str) -> Response:
        return _output(_order(request, order_id).id)


class ConfirmInput(serializers.Serializer):
    payment_method = serializers.RegexField(r"^pm_[A-Za-z0-9_]{1,80}$")


class OrderConfirm(APIView):
    """Local (localstripe) mode only: confirm the payment server-side with a test payment method such as
    `pm_card_visa`, `pm_card_chargeCustomerFail` (declined, 402) or `pm_card_threeDSecure2Required`."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=ConfirmInput, responses={200: OrderOutput, 402: OrderOutput, **ERRORS})
    def post(self, request: Request, order_id: str) -> Response:
        order = _order(request, order_id)
        values = ConfirmInput(data=request.data)
        values.is_valid(raise_exception=True)
        try:
            services.confirm_locally(order, values.validated_data["payment_method"])
        except services.OrderError as error:
            return _refused(error)
        return _output(order.id)


class AuthenticateInput(serializers.Serializer):
    success = serializers.BooleanField()


class OrderAuthenticate(APIView):
    """Local mode only: pass (`success: true`) or fail the simulated 3-D Secure challenge."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=AuthenticateInput, responses={200: OrderOutput, **ERRORS})
    def post(self, request: Request, order_id: str) -> Response:
        order = _order(request, order_id)
        values = AuthenticateInput(data=request.data)
        values.is_valid(raise_exception=True)
        try:
            services.authenticate_locally(order, success=values.validated_data["success"])
        except services.OrderError as error:
            return _refused(error)
        return _output(order.id)


class RefundInput(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


class RefundOutput(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    amount_minor = serializers.IntegerField(help_text="Integer minor units of the currency.")
    currency = serializers.CharField()


class OrderRefund(APIView):
    """Refund request under the policy (whole order, within the refund window, before any download)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=RefundInput, responses={201: RefundOutput, **ERRORS})
    def post(self, request: Request, order_id: str) -> Response:
        order = _order(request, order_id)
        values = RefundInput(data=request.data)
        values.is_valid(raise_exception=True)
        try:
            refund = services.request_buyer_refund(
                order, _signed_in(request), reason=values.validated_data.get("reason", "")
            )
        except services.OrderError as error:
            return _refused(error)
        body = {
            "id": refund.id,
            "status": refund.status,
            "amount_minor": refund.amount_minor,
            "currency": refund.currency,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class ReceiptDetail(APIView):
    """The signed receipt of a paid order (ledger entries with inclusion proofs and a signed tree head)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: SIGNED_DOCUMENT, **ERRORS})
    def get(self, request: Request, order_id: str) -> Response:
        order = _order(request, order_id)
        if order.paid_at is None:
            raise ApiError("This order is not paid.", "not_paid", status.HTTP_409_CONFLICT)
        return Response(selectors.signed_receipt(order))


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """`POST /api/v1/stripe/webhook/`: 400 for a bad signature or stale timestamp; otherwise 200 with
    what became of the event (processed, duplicate, ignored, rejected, deferred)."""
    try:
        event_id, outcome = receive_event(request.body, request.headers.get("Stripe-Signature", ""))
    except gateway.SignatureError as error:
        logger.warning("stripe webhook refused: %s", error)
        return JsonResponse(
            {"detail": f"Signature check failed: {error}", "code": "bad_signature"}, status=400
        )
    return JsonResponse({"event": event_id, "status": outcome.status, "detail": outcome.detail})
