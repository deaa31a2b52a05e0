from django.contrib import admin

from exchange.delivery.models import Entitlement


@admin.register(Entitlement)
class EntitlementAdmin(admin.ModelAdmin):
    list_display = ["id", "buyer", "version", "license_code", "status", "granted_at", "revoked_at"]
    list_filter = ["status", "license_code"]
    search_fields = ["id", "source", "buyer__username"]
    readonly_fields = [f.name for f in Entitlement._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
