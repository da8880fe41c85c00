"""CMDB writes: permissions and service ownership, the lifecycle through its service, edits, relationships,
baselines. Every write is expected to name its audit event."""

import pytest

from cmdb import services
from cmdb.choices import CiState, CiType, EnvironmentTier, RelationshipKind
from cmdb.exceptions import IllegalTransition, InvalidInput, NotAllowed
from cmdb.models import ConfigurationItem, Relationship
from rdm_site.exceptions import UnmetConditions
from rdm_site.models import AuditEvent, OutboxEvent
from tests.cmdb.factories import ConfigurationItemFactory, EnvironmentFactory, RelationshipFactory, ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def oscars_ci(oscar):
    return ConfigurationItemFactory(name="payments-api", service=ServiceFactory(name="Payments", owner=oscar))


@pytest.fixture
def sophies_ci(sophie):
    return ConfigurationItemFactory(name="web-shop", service=ServiceFactory(name="Web Shop", owner=sophie))


# --- lifecycle --------------------------------------------------------------------------------


def test_a_transition_moves_the_ci_saves_it_and_is_audited(deployment_manager, audit_calls):
    # given a CI being built
    ci = ConfigurationItemFactory(state=CiState.IN_BUILD)
    # when the deployment manager takes it live
    fresh = services.ci_transition(ci=ci, transition="go_live", actor=deployment_manager, reason="release 5.0")
    # then it is live in the database, and the trail says who moved it from where to where, and why
    assert fresh.state == CiState.LIVE
    assert ConfigurationItem.objects.get(pk=ci.pk).state == CiState.LIVE
    assert audit_calls == [
        {
            "actor": deployment_manager,
            "action": "ci.go_live",
            "target": fresh,
            "from_state": CiState.IN_BUILD,
            "to_state": CiState.LIVE,
            "reason": "release 5.0",
        }
    ]


def test_an_illegal_transition_names_the_state_and_the_transition_and_changes_nothing(deployment_manager, audit_calls):
    # given a planned CI
    ci = ConfigurationItemFactory(state=CiState.PLANNED)
    # when someone takes it live without building it
    with pytest.raises(IllegalTransition, match=r"Cannot go live configuration item .*: it is planned\."):
        services.ci_transition(ci=ci, transition="go_live", actor=deployment_manager)
    # then it stays planned and nothing is audited
    assert ConfigurationItem.objects.get(pk=ci.pk).state == CiState.PLANNED
    assert audit_calls == []


@pytest.mark.parametrize(
    "attempt",
    [
        lambda ci, actor, reason: services.ci_transition(ci=ci, transition="retire", actor=actor, reason=reason),
        lambda ci, actor, reason: services.ci_update(ci=ci, actor=actor, data={"version": "2"}, reason=reason),
        lambda ci, actor, reason: services.baseline_take(name="b", cis=[ci], actor=actor, reason=reason),
    ],
    ids=["transition", "edit", "baseline"],
)
def test_a_reason_longer_than_a_paragraph_is_refused_and_nothing_changes(deployment_manager, audit_calls, attempt):
    # given a live CI
    ci = ConfigurationItemFactory(state=CiState.LIVE, version="1")
    # when someone acts on it giving a 200,000-character reason
    with pytest.raises(InvalidInput, match=r"Shorten the reason to at most 2000 characters \(it has 200000\)"):
        attempt(ci, deployment_manager, "x" * 200_000)
    # then the CI is as it was, and nothing is recorded
    assert ConfigurationItem.objects.filter(pk=ci.pk, state=CiState.LIVE, version="1").exists()
    assert audit_calls == []


def test_every_cmdb_transition_is_put_in_the_outbox_with_its_audit_event(deployment_manager):
    # when a CI goes live
    ci = services.ci_transition(
        ci=ConfigurationItemFactory(state=CiState.IN_BUILD), transition="go_live", actor=deployment_manager
    )
    # then the outbox holds the event for the outside, tied to its audit event
    [outbox] = OutboxEvent.objects.all()
    assert (outbox.event_type, outbox.object_type, outbox.object_id) == (
        "ci.go_live",
        "cmdb.configurationitem",
        str(ci.pk),
    )
    assert outbox.audit_event.action == "ci.go_live"


def test_a_description_past_the_text_limit_is_refused(administrator):
    with pytest.raises(InvalidInput, match=r"description: at most 20000 characters \(it has 200000\)"):
        services.environment_create(
            actor=administrator, name="qa", tier=EnvironmentTier.TEST, promotion_order=9, description="x" * 200_000
        )


def test_a_transition_reads_the_ci_afresh_instead_of_trusting_the_callers_copy(deployment_manager):
    # given a caller holding a copy of a CI that someone else has since taken live
    stale = ConfigurationItemFactory(state=CiState.IN_BUILD)
    services.ci_transition(ci=ConfigurationItem.objects.get(pk=stale.pk), transition="go_live", actor=None)
    # when the caller takes its copy live as well / then the second "go live" is refused
    with pytest.raises(IllegalTransition, match="it is live"):
        services.ci_transition(ci=stale, transition="go_live", actor=deployment_manager)


def test_an_unknown_transition_is_a_programming_error(deployment_manager):
    with pytest.raises(ValueError, match="explode"):
        services.ci_transition(ci=ConfigurationItemFactory(), transition="explode", actor=deployment_manager)


# --- who may --------------------------------------------------------------------------------


def test_a_service_owner_is_refused_on_another_owners_ci_and_told_why(sophie, oscars_ci, audit_calls):
    # when Sophie tries to retire a CI of Oscar's service
    with pytest.raises(NotAllowed) as refusal:
        services.ci_transition(ci=oscars_ci, transition="retire", actor=sophie)
    # then she is told the rule and whose CI it is, and the CI is untouched
    message = str(refusal.value)
    assert "Service Owners may only edit CIs of services they own" in message
    assert "'Payments' (owned by oscar)" in message
    assert ConfigurationItem.objects.get(pk=oscars_ci.pk).state == CiState.LIVE
    assert audit_calls == []


def test_a_service_owner_edits_and_moves_ci_of_their_own_service(sophie, sophies_ci):
    # when Sophie edits and retires a CI of her own service / then both happen
    services.ci_update(ci=sophies_ci, actor=sophie, data={"version": "5.0.2"})
    retired = services.ci_transition(ci=sophies_ci, transition="retire", actor=sophie)
    assert (retired.version, retired.state) == ("5.0.2", CiState.RETIRED)


def test_a_service_owner_may_not_create_a_ci_outside_their_services(sophie):
    environment = EnvironmentFactory()
    with pytest.raises(NotAllowed, match="belongs to no service"):
        services.ci_create(actor=sophie, name="stray", environment=environment, ci_type=CiType.SERVER)
    own = ServiceFactory(owner=sophie)
    created = services.ci_create(actor=sophie, name="mine", environment=environment, ci_type="server", service=own)
    assert created.state == CiState.PLANNED


def test_a_service_owner_may_not_hand_their_ci_to_another_owners_service(sophie, sophies_ci, oscars_ci):
    with pytest.raises(NotAllowed, match="'Payments' \\(owned by oscar\\)"):
        services.ci_update(ci=sophies_ci, actor=sophie, data={"service": oscars_ci.service})


def test_a_deployment_manager_edits_any_ci(deployment_manager, oscars_ci):
    updated = services.ci_update(ci=oscars_ci, actor=deployment_manager, data={"version": "9.9"})
    assert updated.version == "9.9"


@pytest.mark.parametrize(
    "attempt",
    [
        lambda ci, actor: services.ci_update(ci=ci, actor=actor, data={"version": "2"}),
        lambda ci, actor: services.ci_transition(ci=ci, transition="retire", actor=actor),
        lambda ci, actor: services.relationship_add(
            source=ci, target=ConfigurationItemFactory(), kind="depends_on", actor=actor
        ),
        lambda ci, actor: services.baseline_take(name="b", cis=[ci], actor=actor),
    ],
    ids=["edit", "transition", "relationship", "baseline"],
)
def test_a_viewer_may_not_change_the_cmdb(viewer, oscars_ci, attempt):
    with pytest.raises(NotAllowed, match=r"vera may not .*: none of their roles grants 'cmdb\."):
        attempt(oscars_ci, viewer)


def test_environments_and_services_are_laid_out_by_administrators_only(deployment_manager, administrator):
    # when a deployment manager creates an environment / then it is refused
    with pytest.raises(NotAllowed, match=r"cmdb\.add_environment"):
        services.environment_create(actor=deployment_manager, name="qa", tier=EnvironmentTier.TEST, promotion_order=9)
    # when the administrator does / then it exists, with a slug from its name
    environment = services.environment_create(
        actor=administrator, name="QA Lab", tier=EnvironmentTier.TEST, promotion_order=9
    )
    service = services.service_create(actor=administrator, name="Billing", owner=deployment_manager)
    assert (environment.slug, service.slug) == ("qa-lab", "billing")
    with pytest.raises(NotAllowed, match=r"cmdb\.change_service"):
        services.service_update(service=service, actor=deployment_manager, data={"criticality": "high"})


# --- edits ----------------------------------------------------------------------------------


def test_an_edit_records_only_the_fields_that_changed(deployment_manager, oscars_ci, oscar, audit_calls):
    # given a CI at version 1.0 without attributes
    services.ci_update(ci=oscars_ci, actor=None, data={"version": "1.0"})
    audit_calls.clear()
    # when its version, attributes and owner are set, and its name set to what it is
    services.ci_update(
        ci=oscars_ci,
        actor=deployment_manager,
        data={"version": "1.1", "attributes": {"replicas": 3}, "owner": oscar, "name": "payments-api"},
        reason="scaled out",
    )
    # then one edit event lists exactly the changed fields, related objects by name
    [event] = audit_calls
    assert event["action"] == "ci.update"
    assert event["reason"] == "scaled out"
    assert event["changes"] == {
        "version": ["1.0", "1.1"],
        "attributes": [{}, {"replicas": 3}],
        "owner": [None, "oscar"],
    }


def test_a_deployments_versions_are_set_together_each_change_audited_like_an_edit(oscars_ci, sophies_ci, audit_calls):
    # given two CIs at 1.0 and a third already at 2.0
    services.ci_update(ci=oscars_ci, actor=None, data={"version": "1.0"})
    services.ci_update(ci=sophies_ci, actor=None, data={"version": "1.0"})
    current = ConfigurationItemFactory(version="2.0")
    audit_calls.clear()
    # when a deployment's end records that all three run 2.0
    changed = services.ci_versions_set(
        versions={oscars_ci: "2.0", sophies_ci: "2.0", current: "2.0"}, reason="deployed by deployment #7"
    )
    # then the two that ran 1.0 changed, each with the edit event ci_update writes, by RDM itself, in the outbox
    assert changed == 2
    assert set(ConfigurationItem.objects.values_list("version", flat=True)) == {"2.0"}
    assert list(audit_calls) == [
        {
            "actor": None,
            "action": "ci.update",
            "target": ci,
            "reason": "deployed by deployment #7",
            "changes": {"version": ["1.0", "2.0"]},
        }
        for ci in sorted([oscars_ci, sophies_ci], key=lambda ci: ci.pk)
    ]
    assert OutboxEvent.objects.filter(event_type="ci.update").count() == 2 + 2
    assert ConfigurationItem.objects.get(pk=oscars_ci.pk).updated > oscars_ci.updated


def test_a_version_too_long_for_the_cmdb_is_refused_and_nothing_changes(oscars_ci, audit_calls):
    with pytest.raises(InvalidInput, match="not valid"):
        services.ci_versions_set(versions={oscars_ci: "9" * 101}, reason="deployed by deployment #7")
    assert ConfigurationItem.objects.get(pk=oscars_ci.pk).version == oscars_ci.version
    assert audit_calls == []


def test_an_edit_that_changes_nothing_records_nothing(deployment_manager, oscars_ci, audit_calls):
    services.ci_update(ci=oscars_ci, actor=deployment_manager, data={"name": oscars_ci.name})
    assert audit_calls == []


def test_an_edit_cannot_touch_the_state(deployment_manager, oscars_ci):
    with pytest.raises(InvalidInput, match="cannot be edited: state"):
        services.ci_update(ci=oscars_ci, actor=deployment_manager, data={"state": CiState.RETIRED})


def test_an_edit_is_validated_by_the_model(deployment_manager, oscars_ci):
    # given another CI with the name wanted, in the same environment
    ConfigurationItemFactory(name="taken", environment=oscars_ci.environment)
    # when the CI is renamed to it, or given attributes that are not an object / then it is refused
    with pytest.raises(InvalidInput, match="already exists"):
        services.ci_update(ci=oscars_ci, actor=deployment_manager, data={"name": "taken"})
    with pytest.raises(InvalidInput, match="JSON object"):
        services.ci_update(ci=oscars_ci, actor=deployment_manager, data={"attributes": [1, 2]})


def test_a_service_edit_records_new_stakeholders(administrator, sophie, oscar, audit_calls):
    service = ServiceFactory(owner=oscar)
    services.service_update(service=service, actor=administrator, data={"stakeholders": [sophie], "owner": sophie})
    [event] = audit_calls
    assert event["changes"] == {"owner": ["oscar", "sophie"], "stakeholders": [[], ["sophie"]]}
    assert list(service.stakeholders.all()) == [sophie]


# --- relationships ----------------------------------------------------------------------------


def test_a_service_owner_states_what_their_ci_depends_on_even_when_it_is_anothers(
    sophie, sophies_ci, oscars_ci, audit_calls
):
    # when Sophie says her web shop depends on Oscar's payments API
    relationship = services.relationship_add(source=sophies_ci, target=oscars_ci, kind="depends_on", actor=sophie)
    # then the relationship exists and its creation is recorded
    assert Relationship.objects.get() == relationship
    assert audit_calls == [{"actor": sophie, "action": "relationship.create", "target": relationship}]
    # when she tries the reverse, a fact about Oscar's CI / then it is refused
    with pytest.raises(NotAllowed, match="may only edit CIs of services they own"):
        services.relationship_add(source=oscars_ci, target=sophies_ci, kind="depends_on", actor=sophie)


def test_a_relationship_is_stated_once(deployment_manager, sophies_ci, oscars_ci):
    services.relationship_add(source=sophies_ci, target=oscars_ci, kind="depends_on", actor=deployment_manager)
    with pytest.raises(InvalidInput, match="already exists"):
        services.relationship_add(source=sophies_ci, target=oscars_ci, kind="depends_on", actor=deployment_manager)


def test_removing_a_relationship_is_audited(deployment_manager):
    relationship = RelationshipFactory(kind=RelationshipKind.RUNS_ON)
    pk, stated = relationship.pk, str(relationship)
    services.relationship_remove(relationship=relationship, actor=deployment_manager)
    assert not Relationship.objects.exists()
    event = AuditEvent.objects.get(action="relationship.delete")
    assert (event.object_id, event.object_repr, event.actor_label) == (str(pk), stated, "dan")
    assert " runs on " in stated


# --- baselines ----------------------------------------------------------------------------


def test_a_baseline_snapshots_a_services_cis_as_they_are(deployment_manager, oscars_ci, audit_calls):
    # given a second CI of the service, retired, and one of another service
    services.ci_update(ci=oscars_ci, actor=None, data={"version": "2.3", "attributes": {"port": 443}})
    retired = ConfigurationItemFactory(service=oscars_ci.service, state=CiState.RETIRED)
    ConfigurationItemFactory()
    # when a baseline of the service is taken
    baseline = services.baseline_take(
        name="pre-release", service=oscars_ci.service, actor=deployment_manager, reason="R-12"
    )
    # then it holds both of its CIs as they were, and later edits do not change it
    services.ci_update(ci=oscars_ci, actor=None, data={"version": "2.4"})
    items = {item.ci_id: item for item in baseline.items.all()}
    assert set(items) == {oscars_ci.pk, retired.pk}
    assert (items[oscars_ci.pk].version, items[oscars_ci.pk].attributes) == ("2.3", {"port": 443})
    assert items[retired.pk].state == CiState.RETIRED
    assert (baseline.scope, baseline.taken_by) == ("service Payments", deployment_manager)
    assert audit_calls[-2]["action"] == "baseline.create"


def test_a_baseline_covers_an_environment_or_a_list_of_cis(deployment_manager):
    first, second = ConfigurationItemFactory(), ConfigurationItemFactory()
    by_environment = services.baseline_take(name="env", environment=first.environment, actor=deployment_manager)
    by_list = services.baseline_take(name="list", cis=[first, second], actor=deployment_manager)
    assert [item.ci_id for item in by_environment.items.all()] == [first.pk]
    assert {item.ci_id for item in by_list.items.all()} == {first.pk, second.pk}
    assert by_list.scope == "2 selected CIs"


def test_a_baseline_needs_exactly_one_scope(deployment_manager, oscars_ci):
    with pytest.raises(TypeError, match="exactly one"):
        services.baseline_take(name="b", actor=deployment_manager)
    with pytest.raises(TypeError, match="exactly one"):
        services.baseline_take(name="b", cis=[oscars_ci], service=oscars_ci.service, actor=deployment_manager)


def test_cmdb_writes_land_in_the_verifiable_audit_chain(deployment_manager):
    from rdm_site.audit import audit_chain_verify

    # given a CI taken through its lifecycle and edited
    ci = ConfigurationItemFactory(state=CiState.PLANNED)
    services.ci_transition(ci=ci, transition="build", actor=deployment_manager)
    services.ci_transition(ci=ci, transition="go_live", actor=deployment_manager, reason="first release")
    services.ci_update(ci=ci, actor=deployment_manager, data={"version": "2.0"})
    # then the trail holds each step, and the chain verifies
    from rdm_site.selectors import audit_events_for

    events = list(audit_events_for(ci).values_list("action", "from_state", "to_state", "actor_label"))
    assert events == [
        ("ci.build", "planned", "in_build", "dan"),
        ("ci.go_live", "in_build", "live", "dan"),
        ("ci.update", "", "", "dan"),
    ]
    assert audit_chain_verify().ok


# --- retiring what others depend on -----------------------------------------------------------


@pytest.fixture
def shared_db():
    """A database with a live app depending on it, a cluster it is part of, a peer, and two CIs that no longer
    count: a retired app and one still being built.
    """
    db = ConfigurationItemFactory(name="orders-db", state=CiState.LIVE)
    for name, kind, state in (
        ("orders-app", RelationshipKind.DEPENDS_ON, CiState.LIVE),
        ("old-app", RelationshipKind.DEPENDS_ON, CiState.RETIRED),
        ("next-app", RelationshipKind.RUNS_ON, CiState.IN_BUILD),
    ):
        RelationshipFactory(source=ConfigurationItemFactory(name=name, state=state), target=db, kind=kind)
    RelationshipFactory(source=db, target=ConfigurationItemFactory(name="db-cluster"), kind=RelationshipKind.PART_OF)
    RelationshipFactory(
        source=ConfigurationItemFactory(name="replica", state=CiState.MAINTENANCE),
        target=db,
        kind=RelationshipKind.CONNECTS_TO,
    )
    return db


def test_retiring_a_ci_that_live_cis_depend_on_is_refused_naming_them(deployment_manager, shared_db, audit_calls):
    with pytest.raises(UnmetConditions) as refusal:
        services.ci_transition(ci=shared_db, transition="retire", actor=deployment_manager, reason="old")
    [problem] = refusal.value.conditions
    names = problem.split(": ", 1)[1].split(" (an administrator")[0]
    assert [name.split(" (")[0] for name in names.split(", ")] == ["db-cluster", "orders-app", "replica"]
    assert ConfigurationItem.objects.get(pk=shared_db.pk).state == CiState.LIVE
    assert audit_calls == []


def test_only_an_administrator_overrides_with_a_reason_and_the_trail_names_the_dependents(
    deployment_manager, administrator, shared_db, audit_calls
):
    with pytest.raises(NotAllowed, match="Only an administrator"):
        services.ci_transition(
            ci=shared_db, transition="retire", actor=deployment_manager, reason="old", override_dependents=True
        )
    with pytest.raises(InvalidInput, match="Give the reason"):
        services.ci_transition(ci=shared_db, transition="retire", actor=administrator, override_dependents=True)
    assert audit_calls == []
    fresh = services.ci_transition(
        ci=shared_db, transition="retire", actor=administrator, reason="moved to Aurora", override_dependents=True
    )
    assert fresh.state == CiState.RETIRED
    [event] = audit_calls
    assert event["reason"].startswith("moved to Aurora (retired while db-cluster (")
    assert "orders-app (" in event["reason"]
    assert "replica (" in event["reason"]
    assert "old-app" not in event["reason"]


def test_a_ci_whose_dependents_are_retired_or_not_yet_live_retires(deployment_manager):
    db = ConfigurationItemFactory(name="legacy-db", state=CiState.LIVE)
    RelationshipFactory(source=ConfigurationItemFactory(state=CiState.RETIRED), target=db)
    RelationshipFactory(source=ConfigurationItemFactory(state=CiState.PLANNED), target=db)
    fresh = services.ci_transition(ci=db, transition="retire", actor=deployment_manager)
    assert fresh.state == CiState.RETIRED
