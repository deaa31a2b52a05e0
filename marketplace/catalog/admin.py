from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from marketplace.catalog.models import Product, ProductLicense, ProductVersion, Upload, VersionFile
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
        count = queryset.update(is_listed=False)
        bump_catalog_version()
        self.message_user(request, f"{count} product(s) unlisted.", messages.SUCCESS)

    @admin.action(description="List again")
    def relist(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        count = queryset.update(is_listed=True)
        bump_catalog_version()
        self.message_user(request, f"{count} product(s) listed.", messages.SUCCESS)


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
    list_display = ("id", "owner", "filename", "size", "received_bytes", "status", "created_at")
    list_filter = ("status",)
    readonly_fields = ("chunk_sha256",)
