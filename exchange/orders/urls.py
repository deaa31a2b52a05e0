"""Pages of buying: checkout, order history, refund requests, a provider's sales and payouts."""

from django.urls import path

from exchange.orders import views

app_name = "exchange"

urlpatterns = [
    path("orders/", views.order_list, name="orders"),
    path("orders/new/", views.order_create, name="order_create"),
    path("orders/<str:order_id>/", views.order_detail, name="order"),
    path("orders/<str:order_id>/pay/", views.order_pay, name="order_pay"),
    path("orders/<str:order_id>/authenticate/", views.order_authenticate, name="order_authenticate"),
    path("orders/<str:order_id>/refund/", views.order_refund, name="order_refund"),
    path("sales/", views.sales, name="sales"),
    path("sales/<slug:slug>/payouts/onboard/", views.payout_onboarding_start, name="payout_onboarding_start"),
    path(
        "sales/<slug:slug>/payouts/refresh/",
        views.payout_onboarding_refresh,
        name="payout_onboarding_refresh",
    ),
    path(
        "sales/<slug:slug>/payouts/return/", views.payout_onboarding_return, name="payout_onboarding_return"
    ),
    path("sales/<slug:slug>/payouts/local/", views.payout_onboarding_local, name="payout_onboarding_local"),
]
