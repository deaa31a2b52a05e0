"""Synthex: the Django project wiring and the supply side (accounts, catalog, certification, generators).

Kept free of imports on purpose: the pure cores below (``certification.engine``, ``certification.verify``)
must import without Django or Celery. The Celery app is loaded by ``marketplace.core`` when Django starts.
"""
