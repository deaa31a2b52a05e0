from django.urls import path

from marketplace.catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.home, name="home"),
    path("products/new/", views.product_create, name="product_create"),
    path("products/<slug:slug>/", views.product_detail, name="product_detail"),
    path("products/<slug:slug>/edit/", views.product_edit, name="product_edit"),
    path("products/<slug:slug>/versions/new/", views.version_upload, name="version_upload"),
    path(
        "products/<slug:slug>/versions/<int:number>/confirm/", views.version_confirm, name="version_confirm"
    ),
    path(
        "products/<slug:slug>/versions/<int:number>/reference/delete/",
        views.reference_delete,
        name="reference_delete",
    ),
]
