from django.urls import path

from exchange.downloads import views

app_name = "downloads"

urlpatterns = [
    path("library/", views.library, name="library"),
    path("library/<str:entitlement_id>/files/<int:file_id>/<str:fmt>/", views.download, name="download"),
    path("library/receipts/<str:delivery_id>.json", views.receipt, name="receipt"),
    path(
        "library/<str:entitlement_id>/sets/<int:number>/<str:fmt>/", views.download_set, name="download_set"
    ),
]
