"""WSGI entry point: gunicorn serves RDM through it (see docs/serving.md)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rdm_site.settings")
application = get_wsgi_application()
