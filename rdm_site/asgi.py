"""ASGI entry point, kept for the serving benchmark (see docs/serving.md)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rdm_site.settings")
application = get_asgi_application()
