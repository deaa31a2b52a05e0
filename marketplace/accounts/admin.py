from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from marketplace.accounts.authentication import forget_tokens, forget_user_tokens
from marketplace.accounts.models import Membership, Organization, User


@admin.register(User)
class SynthexUserAdmin(UserAdmin):
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Synthex", {"fields": ("is_auditor",)}))
    list_display = ("username", "email", "is_staff", "is_auditor", "date_joined")

    # A user changed or deleted here (deactivated, made staff) is read afresh by the next API request.
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            forget_user_tokens(obj.pk)
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        forget_user_tokens(obj.pk)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            forget_user_tokens(pk)
        super().delete_queryset(request, queryset)


admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class SynthexTokenAdmin(TokenAdmin):
    """DRF's token admin; a token deleted here is refused from the next request on."""

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        forget_tokens([obj.key])
        super().delete_model(request, obj)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_provider", "created_at")
    search_fields = ("name", "slug")
    inlines = [MembershipInline]
