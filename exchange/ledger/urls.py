from django.urls import path

from exchange.ledger import views

app_name = "ledger"

urlpatterns = [
    path("ledger/", views.explorer, name="explorer"),
    path("ledger/earnings/", views.provider_accounts, name="provider"),
    path("transparency/", views.transparency, name="transparency"),
]
