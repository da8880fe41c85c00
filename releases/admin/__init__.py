"""Admin for release governance, one module per area. States are read-only; every save, edit and transition
calls a service with the signed-in user (``rdm_site.admin_support``), and every refusal is shown on the page.
"""

from releases.admin import change, evidence, package, policy, release, review  # noqa: F401 - registers the admins
