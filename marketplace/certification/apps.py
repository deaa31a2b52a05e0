from django.apps import AppConfig


class CertificationConfig(AppConfig):
    name = "marketplace.certification"
    label = "certification"
    verbose_name = "Certification"
