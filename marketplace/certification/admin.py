from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from marketplace.certification import keys, services
from marketplace.certification.models import Certificate, Job, Revocation, SigningKey


@admin.register(Certificate)
class CertificateAdmin(admin.ModelAdmin):
    """Certificates are immutable: staff can read and revoke them, never edit them."""

    list_display = (
        "id",
        "version",
        "quality_grade",
        "privacy_grade",
        "privacy_passed",
        "issued_at",
        "key_id",
    )
    list_filter = ("quality_grade", "privacy_grade", "privacy_passed")
    search_fields = ("id", "version__product__slug")
    actions = ["revoke"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Revoke (publishes a signed revocation)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Certificate]) -> None:
        for certificate in queryset:
            services.revoke_certificate(certificate, reason=f"Revoked by staff ({request.user}).")
        self.message_user(request, f"{queryset.count()} certificate(s) revoked.", messages.SUCCESS)


@admin.register(Revocation)
class RevocationAdmin(admin.ModelAdmin):
    list_display = ("certificate", "revoked_at", "reason")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "version", "status", "stage", "progress", "attempts", "created_at")
    list_filter = ("kind", "status")
    readonly_fields = ("error",)


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ("key_id", "status", "created_at", "retired_at")
    actions = ["rotate"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Rotate: make a new active key (the selection is ignored)")
    def rotate(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        record = keys.rotate_signing_key()
        self.message_user(
            request, f"New active key {record.key_id}; the previous one is retired.", messages.SUCCESS
        )
