"""Orders, their Stripe payments, a mirror of received Stripe events, refunds and provider payouts.

Money is integer minor units (``*_minor``, BigInteger) of ``currency`` (ISO 4217). An order freezes its
price, the platform fee rate and the resulting split when it is created. Idempotency keys are written
before the first Stripe call that uses them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from exchange.delivery.models import Entitlement
from marketplace.accounts.models import Organization
from marketplace.catalog.models import Product, ProductVersion


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        PAID = "paid", "Paid"
        REFUNDED = "refunded", "Refunded"
        CANCELED = "canceled", "Canceled"

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    version = models.ForeignKey(ProductVersion, on_delete=models.PROTECT, related_name="orders")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    seller = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="sales")
    license_code = models.CharField(max_length=20)
    amount_minor = models.BigIntegerField(help_text="Price frozen at order time, in minor units.")
    currency = models.CharField(max_length=3)
    fee_rate = models.DecimalField(
        max_digits=6, decimal_places=4, help_text="Platform fee rate frozen at order time."
    )
    platform_fee_minor = models.BigIntegerField()
    provider_share_minor = models.BigIntegerField()
    refunded_minor = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    entitlement = models.OneToOneField(
        Entitlement, on_delete=models.PROTECT, null=True, blank=True, related_name="order"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Double submit, two tabs, two devices: one open order per buyer and item, hence one charge.
            models.UniqueConstraint(
                fields=["buyer", "version", "license_code"],
                condition=Q(status="pending"),
                name="one_open_order_per_item",
            ),
            models.CheckConstraint(condition=Q(amount_minor__gte=0), name="order_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_minor__gte=0) & Q(refunded_minor__lte=models.F("amount_minor")),
                name="order_refund_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["seller", "status"]), models.Index(fields=["buyer", "status"])]

    def __str__(self) -> str:
        return self.id

    @property
    def is_free(self) -> bool:
        return self.amount_minor == 0

    @property
    def refundable_minor(self) -> int:
        return self.amount_minor - self.refunded_minor if self.status == self.Status.PAID else 0


class Payment(models.Model):
    """Local mirror of the order's Stripe PaymentIntent (one per order; retries after a decline reuse it)."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="payment")
    idempotency_key = models.CharField(max_length=80, unique=True)
    stripe_payment_intent_id = models.CharField(max_length=80, unique=True, null=True, blank=True)
    client_secret = models.CharField(max_length=200, blank=True)
    stripe_status = models.CharField(
        max_length=40, blank=True, help_text="The PaymentIntent's status as last seen."
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    last_error = models.CharField(max_length=300, blank=True)
    stripe_fee_minor = models.BigIntegerField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.stripe_payment_intent_id or self.idempotency_key


class WebhookEvent(models.Model):
    """Every authentic Stripe event received, once (the event id is unique: a replay is ignored)."""

    class Status(models.TextChoices):
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        REJECTED = "rejected", "Rejected"
        DEFERRED = "deferred", "Deferred: order not found yet"

    stripe_event_id = models.CharField(max_length=80, unique=True)
    type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=80, blank=True, db_index=True)
    stripe_created_at = models.DateTimeField()
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices)
    detail = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.stripe_event_id} {self.type} [{self.status}]"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending at Stripe"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Initiator(models.TextChoices):
        STAFF = "staff", "Staff"
        BUYER = "buyer", "Buyer (refund policy)"
        STRIPE = "stripe", "Stripe (dashboard or dispute)"

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    platform_fee_minor = models.BigIntegerField(
        help_text="Part of the refund taken back from the platform fee."
    )
    provider_share_minor = models.BigIntegerField(help_text="The provider's proportional part of the refund.")
    platform_covered_minor = models.BigIntegerField(
        default=0, help_text="Part of the provider's share the platform bore because it was already paid out."
    )
    initiator = models.CharField(max_length=10, choices=Initiator.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)
    idempotency_key = models.CharField(max_length=80, unique=True)
    stripe_refund_id = models.CharField(max_length=80, unique=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return self.id


class PayoutAccount(models.Model):
    """The provider organization's Stripe Connect account that payouts are transferred to."""

    organization = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="payout_account")
    stripe_account_id = models.CharField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.organization} → {self.stripe_account_id}"


class PayoutRun(models.Model):
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Payout run {self.pk} ({self.created_at:%Y-%m-%d %H:%M})"


class Payout(models.Model):
    """One Connect transfer of an organization's payable balance in one currency."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending at Stripe"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        REVERSED = "reversed", "Reversed"

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    run = models.ForeignKey(PayoutRun, on_delete=models.PROTECT, related_name="payouts")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="payouts")
    destination = models.CharField(max_length=80, help_text="The Connect account id at the time of the run.")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=80, unique=True)
    stripe_transfer_id = models.CharField(max_length=80, unique=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payout_amount_positive")]

    def __str__(self) -> str:
        return self.id
