"""Web pages of the exchange, included at the site root."""

from django.urls import include, path

urlpatterns = [
    path("", include("exchange.ledger.urls")),
    path("", include("exchange.orders.urls")),
    path("", include("exchange.downloads.urls")),
    path("", include("exchange.delivery.urls")),
]
