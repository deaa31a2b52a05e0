from django.apps import AppConfig


class GeneratorsConfig(AppConfig):
    name = "marketplace.generators"
    label = "generators"
    verbose_name = "Generators"
