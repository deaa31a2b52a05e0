from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "exchange.delivery"
    label = "delivery"
    verbose_name = "Delivery"
