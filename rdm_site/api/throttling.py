"""Request rates per API token and per signed-in user, counted in the shared Redis cache (429 + Retry-After)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class ActorRateThrottle(SimpleRateThrottle):
    """One budget per token (``token`` rate) or per signed-in user (``user`` rate); anonymous callers are refused
    by authentication before they count.
    """

    scope = "user"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]  # read now, so that settings can change it

    def allow_request(self, request, view):
        self.scope = "token" if getattr(request.user, "token", None) is not None else "user"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        token = getattr(request.user, "token", None)
        ident = f"token-{token.pk}" if token is not None else f"user-{request.user.pk}"
        return f"rdm:throttle:{ident}"
