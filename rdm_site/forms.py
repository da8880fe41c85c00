"""Browser forms of the site's own pages; each hands its input to the service the API calls."""

from datetime import UTC, datetime, time

from django import forms
from django.contrib.auth.models import User

from rdm_site.exceptions import InvalidInput
from rdm_site.scopes import Scope, permission_scope
from rdm_site.tokens import NAME_MAX_LENGTH


def scopes_available_to(user: User) -> list[Scope]:
    """The scopes worth giving a token of ``user``: reading, and each area their roles let them write."""
    granted = {permission_scope(permission) for permission in user.get_all_permissions()}
    return [scope for scope in Scope if scope == Scope.READ or scope in granted]


class TokenCreateForm(forms.Form):
    """A new API token of the signed-in user: ``token_create`` validates and makes it."""

    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX_LENGTH,
        help_text="What uses it, e.g. <code>jenkins-shop</code>.",
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        widget=forms.CheckboxSelectMultiple,
        help_text="A token may do what your roles allow and its scopes cover, nothing more.",
    )
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The token stops working at the start of this day (UTC). Leave empty for no expiry.",
    )

    # Which field each of ``token_create``'s refusals is about, by a word it uses.
    _SERVICE_ERROR_FIELDS = (("scope", "scopes"), ("expiry", "expires_on"), ("name", "name"))

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [
            (scope.value, f"{scope.value}: {scope.label}") for scope in scopes_available_to(user)
        ]
        self.fields["scopes"].initial = [Scope.READ.value]

    def service_arguments(self) -> dict:
        """``token_create``'s keyword arguments from the cleaned form."""
        expires_on = self.cleaned_data["expires_on"]
        return {
            "name": self.cleaned_data["name"],
            "scopes": self.cleaned_data["scopes"],
            "expires_at": datetime.combine(expires_on, time.min, tzinfo=UTC) if expires_on else None,
        }

    def add_service_errors(self, error: InvalidInput) -> None:
        """Show each problem the service reported next to the field it is about."""
        for problem in error.errors:
            field = next((name for word, name in self._SERVICE_ERROR_FIELDS if word in problem), None)
            self.add_error(field, problem[:1].upper() + problem[1:] + ".")
