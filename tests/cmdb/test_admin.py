"""The CMDB admin writes through the services: same rules, same audit trail."""

import pytest
from django.urls import reverse

from cmdb import services
from cmdb.choices import CiState
from cmdb.models import ConfigurationItem, Relationship
from rdm_site.roles import Role
from tests.cmdb.factories import ConfigurationItemFactory, ServiceFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, administrator):
    client.force_login(administrator)
    return client


@pytest.mark.parametrize("model", ["environment", "service", "configurationitem", "relationship", "baseline"])
def test_every_cmdb_admin_page_lists_its_records(admin_client, model):
    ci = ConfigurationItemFactory()
    services.relationship_add(source=ci, target=ConfigurationItemFactory(), kind="runs_on", actor=None)
    services.baseline_take(name="initial", cis=[ci], actor=None)
    assert admin_client.get(reverse(f"admin:cmdb_{model}_changelist")).status_code == 200


def test_a_transition_action_moves_the_selected_cis_and_reports_refusals(admin_client, audit_calls):
    # given one CI being built and one already live
    building, live = ConfigurationItemFactory(state=CiState.IN_BUILD), ConfigurationItemFactory(state=CiState.LIVE)
    # when "go live" is applied to both
    response = admin_client.post(
        reverse("admin:cmdb_configurationitem_changelist"),
        {"action": "go_live", "_selected_action": [building.pk, live.pk]},
        follow=True,
    )
    # then the one being built goes live, audited, and the other's refusal is shown
    assert ConfigurationItem.objects.get(pk=building.pk).state == CiState.LIVE
    assert [call["action"] for call in audit_calls] == ["ci.go_live"]
    shown = [str(message) for message in response.context["messages"]]
    assert any(f"{live}: Cannot go live configuration item {live}: it is live." in message for message in shown)


def test_editing_a_ci_in_the_admin_is_an_audited_edit(admin_client, audit_calls):
    ci = ConfigurationItemFactory(version="1.0")
    form = {
        "name": ci.name,
        "environment": ci.environment.pk,
        "ci_type": ci.ci_type,
        "version": "1.1",
        "service": ci.service.pk,
        "owner": "",
        "attributes": "{}",
        "outgoing_relationships-TOTAL_FORMS": 0,
        "outgoing_relationships-INITIAL_FORMS": 0,
        "incoming_relationships-TOTAL_FORMS": 0,
        "incoming_relationships-INITIAL_FORMS": 0,
    }
    response = admin_client.post(reverse("admin:cmdb_configurationitem_change", args=[ci.pk]), form)
    assert response.status_code == 302
    assert ConfigurationItem.objects.get(pk=ci.pk).version == "1.1"
    assert audit_calls[0]["action"] == "ci.update"
    assert audit_calls[0]["changes"] == {"version": ["1.0", "1.1"]}


def test_adding_a_relationship_in_the_admin_goes_through_the_service(admin_client, audit_calls):
    source, target = ConfigurationItemFactory(), ConfigurationItemFactory()
    response = admin_client.post(
        reverse("admin:cmdb_relationship_add"), {"source": source.pk, "target": target.pk, "kind": "depends_on"}
    )
    assert response.status_code == 302
    assert Relationship.objects.filter(source=source, target=target).exists()
    assert audit_calls[0]["action"] == "relationship.create"


def test_a_staff_service_owner_cannot_save_another_owners_ci_in_the_admin(client, oscar):
    # given a service owner (role members have admin access), and a CI of Oscar's service
    sophie = UserFactory(username="sophie-staff", roles=[Role.SERVICE_OWNER])
    ci = ConfigurationItemFactory(service=ServiceFactory(owner=oscar))
    client.force_login(sophie)
    # when she posts a change / then it is forbidden
    url = reverse("admin:cmdb_configurationitem_change", args=[ci.pk])
    assert client.post(url, {"name": "renamed"}).status_code == 403
