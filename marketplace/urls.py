from django.contrib import admin
from django.urls import include, path

from marketplace.accounts import views as account_views
from marketplace.core import error_pages
from marketplace.core import views as core_views
from marketplace.core.metrics import metrics_view

urlpatterns = [
    path("", include("marketplace.catalog.urls")),
    path("accounts/", include("marketplace.accounts.urls")),
    path("organizations/<slug:slug>/", account_views.organization_detail, name="organization"),
    path("certificates/", include("marketplace.certification.urls")),
    path("", include("marketplace.generators.urls")),
    path("api/v1/", include("marketplace.api_urls")),
    path("", include("exchange.urls")),
    path(".well-known/synthex/keys.json", core_views.well_known_keys, name="well-known-keys"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]

handler404 = error_pages.page_not_found
handler500 = error_pages.server_error
