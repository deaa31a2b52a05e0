"""REST API routes under /api/v1/ (names in DESIGN.md's interface contract)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from marketplace.catalog import api as catalog_api
from marketplace.catalog import relational_api
from marketplace.certification import api as certification_api
from marketplace.generators import api as generators_api
from marketplace.generators import relational_api as generators_relational_api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("products/", catalog_api.ProductListCreate.as_view(), name="api-products"),
    path("products/<slug:slug>/", catalog_api.ProductDetail.as_view(), name="api-product"),
    path("products/<slug:slug>/versions/", catalog_api.VersionCreate.as_view(), name="api-versions"),
    path(
        "products/<slug:slug>/versions/<int:number>/", catalog_api.VersionDetail.as_view(), name="api-version"
    ),
    path(
        "products/<slug:slug>/versions/<int:number>/submit/",
        catalog_api.VersionSubmit.as_view(),
        name="api-version-submit",
    ),
    path(
        "products/<slug:slug>/versions/<int:number>/metadata/",
        relational_api.VersionMetadata.as_view(),
        name="api-version-metadata",
    ),
    path(
        "products/<slug:slug>/versions/<int:number>/rules/",
        catalog_api.VersionRules.as_view(),
        name="api-version-rules",
    ),
    path("products/<slug:slug>/generator/", generators_api.GeneratorCreate.as_view(), name="api-generator"),
    path(
        "products/<slug:slug>/generator/tables/",
        generators_relational_api.HmaGeneratorCreate.as_view(),
        name="api-generator-tables",
    ),
    path(
        "products/<slug:slug>/privacy-budget/",
        generators_api.PrivacyBudgetView.as_view(),
        name="api-privacy-budget",
    ),
    path("", include("exchange.api_urls")),
    path("uploads/", catalog_api.UploadStart.as_view(), name="api-uploads"),
    path("uploads/<str:upload_id>/", catalog_api.UploadDetail.as_view(), name="api-upload"),
    path(
        "uploads/<str:upload_id>/chunks/<int:index>/",
        catalog_api.UploadChunk.as_view(),
        name="api-upload-chunk",
    ),
    path(
        "uploads/<str:upload_id>/complete/", catalog_api.UploadComplete.as_view(), name="api-upload-complete"
    ),
    path("jobs/<uuid:job_id>/", certification_api.JobDetail.as_view(), name="api-job"),
    path(
        "certificates/verify/", certification_api.CertificateVerify.as_view(), name="api-certificate-verify"
    ),
    path(
        "certificates/<str:certificate_id>/",
        certification_api.CertificateDetail.as_view(),
        name="api-certificate",
    ),
    path(
        "certificates/<str:certificate_id>/status/",
        certification_api.CertificateStatus.as_view(),
        name="api-certificate-status",
    ),
]
