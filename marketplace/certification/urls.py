from django.urls import path

from marketplace.certification import views

app_name = "certification"

urlpatterns = [
    path("verify/", views.verify_page, name="verify"),
    path("jobs/<slug:slug>/<int:number>/", views.job_status, name="job_status"),
    path("<str:certificate_id>/", views.certificate_detail, name="detail"),
    path("<str:certificate_id>.json", views.certificate_json, name="json"),
    path("<str:certificate_id>.jcs", views.certificate_jcs, name="jcs"),
]
