"""The admin as an interface to the services (shown on the CMDB's admin): a refused save keeps what was typed,
a refused delete or action is a message, and an action that needs a reason asks for it first."""

import pytest
from django.urls import reverse

from cmdb.choices import CiState
from cmdb.models import ConfigurationItem, Relationship
from rdm_site.models import AuditEvent
from rdm_site.roles import Role
from tests.cmdb.factories import ConfigurationItemFactory, EnvironmentFactory, RelationshipFactory, ServiceFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NO_INLINES = {
    "outgoing_relationships-TOTAL_FORMS": 0,
    "outgoing_relationships-INITIAL_FORMS": 0,
    "incoming_relationships-TOTAL_FORMS": 0,
    "incoming_relationships-INITIAL_FORMS": 0,
}


@pytest.fixture
def sophie(client):
    """A Service Owner signed in to the admin (role members are staff)."""
    sophie = UserFactory(username="sophie", roles=[Role.SERVICE_OWNER])
    client.force_login(sophie)
    return sophie


@pytest.fixture
def oscars_service():
    return ServiceFactory(name="Payments", owner=UserFactory(username="oscar", roles=[Role.SERVICE_OWNER]))


def _ci_form(**typed) -> dict:
    return {"ci_type": "application", "version": "", "owner": "", "attributes": "{}", **NO_INLINES, **typed}


def test_a_refused_add_shows_the_refusal_on_the_form_with_what_was_typed(client, sophie, oscars_service):
    # when Sophie adds a CI to Oscar's service
    environment = EnvironmentFactory()
    response = client.post(
        reverse("admin:cmdb_configurationitem_add"),
        _ci_form(name="ledger-cache", version="7.3.1", environment=environment.pk, service=oscars_service.pk),
    )
    # then the same form comes back, with the service's refusal and everything she typed
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "Service Owners may only edit CIs of services they own" in " ".join(form.non_field_errors())
    assert (form["name"].value(), form["version"].value()) == ("ledger-cache", "7.3.1")
    assert b'value="ledger-cache"' in response.content
    # and nothing was written
    assert not ConfigurationItem.objects.exists()
    assert not AuditEvent.objects.filter(action="ci.create").exists()


def test_a_refused_edit_keeps_the_typed_values_and_changes_nothing(client, sophie, oscars_service):
    # given a CI of Sophie's own service
    ci = ConfigurationItemFactory(name="web-shop", version="5.0", service=ServiceFactory(owner=sophie))
    # when she moves it into Oscar's service while setting its version
    response = client.post(
        reverse("admin:cmdb_configurationitem_change", args=[ci.pk]),
        _ci_form(name="web-shop", version="5.1", environment=ci.environment.pk, service=oscars_service.pk),
    )
    # then the form shows why, with her typed version, and the CI is untouched
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "may not move CI web-shop" in " ".join(form.non_field_errors())
    assert form["version"].value() == "5.1"
    assert ConfigurationItem.objects.get(pk=ci.pk).version == "5.0"


def test_an_accepted_add_goes_through_the_service_and_lands_on_the_new_record(client, sophie):
    own = ServiceFactory(owner=sophie)
    response = client.post(
        reverse("admin:cmdb_configurationitem_add"),
        _ci_form(name="shop-db", environment=EnvironmentFactory().pk, service=own.pk, ci_type="database"),
    )
    ci = ConfigurationItem.objects.get(name="shop-db")
    assert response.status_code == 302
    assert (ci.state, AuditEvent.objects.get(action="ci.create").actor_label) == (CiState.PLANNED, "sophie")


def test_a_refused_delete_is_a_message_and_the_record_stays(client, sophie, oscars_service):
    relationship = RelationshipFactory(source=ConfigurationItemFactory(service=oscars_service))
    url = reverse("admin:cmdb_relationship_delete", args=[relationship.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert Relationship.objects.filter(pk=relationship.pk).exists()
    shown = " ".join(str(message) for message in response.context["messages"])
    assert "may not remove a relationship of CI" in shown


def test_an_action_needing_a_reason_asks_for_it_then_records_it(client, sophie):
    ci = ConfigurationItemFactory(service=ServiceFactory(owner=sophie), state=CiState.LIVE)
    changelist = reverse("admin:cmdb_configurationitem_changelist")
    selected = {"action": "retire", "_selected_action": [ci.pk]}
    # when she retires the CI / then a page asks why first, and nothing has moved yet
    asked = client.post(changelist, selected)
    assert asked.status_code == 200
    assert b"Why are these CIs retired?" in asked.content
    assert ConfigurationItem.objects.get(pk=ci.pk).state == CiState.LIVE
    # when she gives a reason that is far too long / then the refusal is shown and nothing moves
    refused = client.post(changelist, {**selected, "apply": "1", "reason": "x" * 200_000}, follow=True)
    assert "Shorten the reason to at most 2000 characters" in " ".join(map(str, refused.context["messages"]))
    assert ConfigurationItem.objects.get(pk=ci.pk).state == CiState.LIVE
    # when she answers / then the CI is retired with her reason on record
    client.post(changelist, {**selected, "apply": "1", "reason": "replaced by shop-v2"})
    assert ConfigurationItem.objects.get(pk=ci.pk).state == CiState.RETIRED
    assert AuditEvent.objects.get(action="ci.retire").reason == "replaced by shop-v2"
