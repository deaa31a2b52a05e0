from django.urls import path

from exchange.delivery import views

app_name = "delivery"

urlpatterns = [
    path("library/<str:entitlement_id>/draws/", views.draw_page, name="draw"),
    path(
        "library/<str:entitlement_id>/draws/<str:draw_id>/<str:fmt>/",
        views.draw_download,
        name="draw_download",
    ),
]
