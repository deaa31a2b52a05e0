from django.urls import path

from marketplace.generators import views

app_name = "generators"

urlpatterns = [
    path("products/<slug:slug>/generator/", views.generator_create, name="create"),
]
