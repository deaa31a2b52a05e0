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
]
