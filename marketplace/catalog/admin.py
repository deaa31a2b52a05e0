from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from marketplace.catalog.models import Product, ProductLicense, ProductVersion, Upload, VersionFile
from marketplace.catalog.profiles import shape_only
from marketplace.core.page_cache import bump_catalog_version


class LicenseInline(admin.TabularInline):
    model = ProductLicense
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "organization",
        "domain",
        "kind",
        "is_listed",
        "quality_grade",
        "privacy_grade",
        "published_at",
    )
    list_filter = ("is_listed", "domain", "kind", "privacy_grade")
    search_fields = ("title", "slug", "summary", "organization__name")
    readonly_fields = (
        "unlisted_by_staff_at",
        "description_html",
        "search_text",
        "formats",
        "row_count",
        "column_count",
        "price_from_minor",
        "price_currency",
        "quality_score",
        "quality_grade",
        "privacy_grade",
        "dcr_share",
        "published_at",
    )
    inlines = [LicenseInline]
    actions = ["unlist", "relist"]

    @admin.action(description="Unlist (hide from the catalog)")
    def unlist(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        # Moderation: marked as staff's, so the provider cannot list it again (services.update_product).
        count = queryset.update(is_listed=False, unlisted_by_staff_at=timezone.now())
        bump_catalog_version()
        self.message_user(request, f"{count} product(s) unlisted.", messages.SUCCESS)

    @admin.action(description="List again")
    def relist(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        count = queryset.update(is_listed=True, unlisted_by_staff_at=None)
        bump_catalog_version()
        self.message_user(request, f"{count} product(s) listed.", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        """Listing or unlisting in the change form is moderation too: it sets or clears staff's mark."""
        if "is_listed" in form.changed_data:
            obj.unlisted_by_staff_at = None if obj.is_listed else timezone.now()
        super().save_model(request, obj, form, change)


class FileInline(admin.TabularInline):
    model = VersionFile
    extra = 0
    can_delete = False
    fields = ("role", "table_name", "format", "sha256", "size_bytes", "rows", "column_count", "deleted_at")
    readonly_fields = fields


@admin.register(ProductVersion)
class VersionAdmin(admin.ModelAdmin):
    list_display = ("product", "number", "status", "created_at", "certified_at")
    list_filter = ("status",)
    search_fields = ("product__title", "product__slug")
    readonly_fields = ("sdv_metadata", "submitted_at", "certified_at")
    inlines = [FileInline]


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    """Upload sessions, read-only. The validated profile is not shown: the file may be real reference rows
    (train or holdout), which no one but certification reads; staff see its shape (rows, columns) only."""

    list_display = ("id", "owner", "organization", "filename", "size", "status", "validation", "created_at")
    list_filter = ("status", "validation", "transport")
    fields = (
        "id",
        "owner",
        "organization",
        "filename",
        "size",
        "chunk_size",
        "transport",
        "received_bytes",
        "status",
        "sha256",
        "validation",
        "format",
        "shape",
        "error_code",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="shape")
    def shape(self, upload: Upload) -> str:
        if not upload.profile:
            return "-"
        shape = shape_only(upload.profile)
        columns = ", ".join(f"{c['name']} ({c['dtype']})" for c in shape["columns"])
        return f"{shape['rows']} rows: {columns}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Upload | None = None) -> bool:
        return False
