"""Development settings: the default of ``manage.py`` (embedded services, DEBUG on unless told otherwise).

This package also holds ``base``, ``test`` and ``production``. Python runs this file before any of them,
so the development values are applied only when this module itself is the selected settings module.
"""

import os

if os.environ.get("DJANGO_SETTINGS_MODULE", "marketplace.settings") == "marketplace.settings":
    os.environ.setdefault("DEBUG", "1")
    from marketplace.settings.base import *  # noqa: F403
