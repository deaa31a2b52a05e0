from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from marketplace.accounts.models import Membership, Organization, User


@admin.register(User)
class SynthexUserAdmin(UserAdmin):
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Synthex", {"fields": ("is_auditor",)}))
    list_display = ("username", "email", "is_staff", "is_auditor", "date_joined")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_provider", "created_at")
    search_fields = ("name", "slug")
    inlines = [MembershipInline]
