from django.urls import path

from marketplace.generators import relational_views, views

app_name = "generators"

urlpatterns = [
    path("products/<slug:slug>/generator/", views.generator_create, name="create"),
    path(
        "products/<slug:slug>/generator/tables/",
        relational_views.hma_generator_create,
        name="create_tables",
    ),
]
