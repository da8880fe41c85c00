"""The release and package pages: who sees which buttons, forged posts refused, the plan's form, query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rdm_site.selectors import audit_events_for
from releases import services
from releases.choices import PackageState, ReleaseState
from releases.models import Approval, Release, ReleasePackage
from releases.selectors import releases_awaiting_decision_by
from tests.releases.conftest import SHA, add_unit, green_release, validated_package
from tests.releases.factories import ArtifactFactory, ConfigurationItemFactory, PackageFactory, ReleaseFactory

pytestmark = pytest.mark.django_db


def _submitted(world) -> Release:
    add_unit(world)
    services.release_plan(release=world.release, actor=world.people.rm)
    services.release_submit(release=world.release, actor=world.people.rm)
    return world.reload()


def _built_package(world) -> ReleasePackage:
    package = services.package_register(
        release=world.release,
        actor=world.people.ci,
        version="b7",
        artifacts=[{"name": "shop.tar.gz", "uri": "https://artifacts.example/shop.tar.gz", "sha256": SHA}],
    )
    return services.package_mark_built(package=package, actor=world.people.ci)


def _approve_url(release, action="approve") -> str:
    return reverse("releases:release_transition", args=[release.pk, action])


# --- reading ---------------------------------------------------------------------------------------


def test_a_viewer_reads_every_release_page_without_a_button(client, world):
    release, _change = green_release(world)
    package = release.packages.get()
    client.force_login(world.people.viewer)
    pages = [
        reverse("releases:release_list"),
        release.get_absolute_url(),
        release.get_absolute_url() + "?tier=staging",
        reverse("releases:package_list"),
        package.get_absolute_url(),
        reverse("releases:approval_list"),
    ]
    for page in pages:
        answer = client.get(page)
        assert answer.status_code == 200, page
        assert b"data-action=" not in answer.content, page
        assert b"Edit plan" not in answer.content
    assert client.get(reverse("releases:release_create")).status_code == 403
    assert client.get(reverse("releases:release_update", args=[release.pk])).status_code == 403


def test_the_release_page_shows_every_gate_with_its_status_and_evidence(client, world):
    release, _change = green_release(world)
    client.force_login(world.people.viewer)
    page = client.get(release.get_absolute_url()).content.decode()
    for code in ("plan_approved", "package_validated", "tests_passed", "rollback_ready", "stakeholders_notified",
                 "backups_verified", "sacm_ready", "els_scheduled"):  # fmt: skip
        assert f'data-gate="{code}"' in page
    assert page.count(">Met</span>") == 8
    assert "backup-bot" in page
    assert "https://wiki.example/rehearsal" in page
    assert f'title="sha256:{SHA}"' in page  # the digest in full, shown truncated
    assert "regression" in page


def test_a_withdrawn_approval_is_struck_through_with_its_reason(client, world):
    release = _submitted(world)
    services.release_approve(release=release, actor=world.people.so, reason="fine")
    services.release_update(
        release=release, actor=world.people.rm, data={"planned_end": release.planned_end + timedelta(hours=1)}
    )
    client.force_login(world.people.viewer)
    page = client.get(release.get_absolute_url()).content.decode()
    assert 'class="rdm-withdrawn" data-approver="so"' in page
    assert "the plan changed (planned_end)" in page


# --- deciding --------------------------------------------------------------------------------------


def test_the_requester_sees_why_they_may_not_approve_and_a_forged_post_is_refused(client, world):
    release = _submitted(world)
    client.force_login(world.people.rm)
    page = client.get(release.get_absolute_url()).content.decode()
    assert 'data-action="approve"' not in page
    assert "Not available to you" in page
    assert "they requested it" in page
    answer = client.post(_approve_url(release), {"reason": "mine"})
    assert answer.status_code == 403
    assert not Approval.objects.filter(release=release).exists()


def test_a_viewer_forging_an_approval_is_refused(client, world):
    release = _submitted(world)
    client.force_login(world.people.viewer)
    assert client.post(_approve_url(release), {"reason": "x"}).status_code == 403
    assert client.post(_approve_url(release, "reject"), {"reason": "x"}).status_code == 403
    assert not Approval.objects.filter(release=release).exists()
    assert world.reload().state == ReleaseState.SUBMITTED


def test_another_release_manager_approves_with_a_comment(client, world):
    release = _submitted(world)
    client.force_login(world.people.rm2)
    assert 'data-action="approve"' in client.get(release.get_absolute_url()).content.decode()
    answer = client.post(_approve_url(release), {"reason": "Looks good", "next": release.get_absolute_url()})
    assert answer.status_code == 302
    assert answer.url == release.get_absolute_url()
    approval = Approval.objects.get(release=release)
    assert (approval.approver, approval.reason) == (world.people.rm2, "Looks good")
    assert world.reload().state == ReleaseState.APPROVED


def test_approvals_awaiting_a_user_agree_with_the_rule_table(world):
    release = _submitted(world)
    p = world.people
    assert list(releases_awaiting_decision_by(p.rm2)) == [release]
    assert list(releases_awaiting_decision_by(p.so)) == [release]
    for nobody in (p.rm, p.so_other, p.viewer, p.ca):
        assert list(releases_awaiting_decision_by(nobody)) == []
    services.release_approve(release=release, actor=p.so)
    assert list(releases_awaiting_decision_by(p.so)) == []


def test_the_builder_may_not_validate_their_package_but_a_deployment_manager_may(client, world):
    package = _built_package(world)
    url = reverse("releases:package_transition", args=[package.pk, "validate"])
    client.force_login(world.people.ci)
    page = client.get(package.get_absolute_url()).content.decode()
    assert 'data-action="validate"' not in page
    assert "Not available to you" in page
    assert client.post(url, {"reason": "mine"}).status_code == 403
    package.refresh_from_db()
    assert package.state == PackageState.BUILT
    client.force_login(world.people.dm)
    assert 'data-action="validate"' in client.get(package.get_absolute_url()).content.decode()
    assert client.post(url, {"reason": "Smoke-tested"}).status_code == 302
    package.refresh_from_db()
    assert (package.state, package.validated_by) == (PackageState.VALIDATED, world.people.dm)


# --- the plan's form -------------------------------------------------------------------------------


def _plan_post(world, **overrides) -> dict:
    start = timezone.now() + timedelta(days=20)
    data = {
        "name": "Checkout",
        "version": "3.0",
        "policy": world.policy.pk,
        "services": [world.service.pk],
        "release_manager": "",
        "planned_start": start.strftime("%Y-%m-%dT%H:%M"),
        "planned_end": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "description": "Faster checkout.",
        "release_notes": "## Checkout\n\n- one page",
        "units-TOTAL_FORMS": "3",
        "units-INITIAL_FORMS": "0",
        "units-MIN_NUM_FORMS": "0",
        "units-MAX_NUM_FORMS": "20",
    }
    for index in range(3):
        data |= {f"units-{index}-kind": "application_artifact", f"units-{index}-reversible": "on"}
    return data | overrides


def test_a_release_manager_creates_a_plan_with_its_units_in_one_go(client, world):
    client.force_login(world.people.rm)
    assert client.get(reverse("releases:release_create")).status_code == 200
    data = _plan_post(
        world,
        **{"units-0-name": "shop-app", "units-0-configuration_items": [world.ci.pk], "units-1-name": "shop-db"},
    )
    answer = client.post(reverse("releases:release_create"), data)
    release = Release.objects.get(name="Checkout")
    assert answer.status_code == 302
    assert answer.url == release.get_absolute_url()
    assert (release.release_manager, release.requested_by, release.release_type) == (
        world.people.rm,
        world.people.rm,
        world.policy.release_type,
    )
    assert {unit.name: [ci.pk for ci in unit.configuration_items.all()] for unit in release.units.all()} == {
        "shop-app": [world.ci.pk],
        "shop-db": [],
    }
    page = client.get(release.get_absolute_url()).content.decode()
    assert "<h2>Checkout</h2>" in page  # the notes' Markdown, rendered


def test_bad_input_is_shown_next_to_each_field_and_nothing_typed_is_lost(client, world):
    client.force_login(world.people.rm)
    data = _plan_post(
        world,
        name="",
        planned_end=_plan_post(world)["planned_start"],
        **{"units-0-name": "twice", "units-1-name": "twice", "units-2-version": "9"},
    )
    answer = client.post(reverse("releases:release_create"), data)
    assert answer.status_code == 422
    form, units = answer.context["form"], answer.context["units"]
    assert "name" in form.errors
    assert "planned_end" in form.errors
    assert "already named" in str(units.forms[1].errors["name"])
    assert "name" in units.forms[2].errors  # a version without a name
    page = answer.content.decode()
    assert 'value="Faster checkout."' in page or "Faster checkout." in page
    assert 'value="twice"' in page
    assert 'value="9"' in page
    assert not Release.objects.filter(version="3.0").exists()


def test_a_duplicate_name_and_version_is_refused_next_to_the_fields(client, world):
    client.force_login(world.people.rm)
    answer = client.post(reverse("releases:release_create"), _plan_post(world, name="Shop", version="2.0"))
    assert answer.status_code == 422
    assert answer.context["form"].errors


def test_a_release_manager_edits_the_plan_through_the_service(client, world):
    release = world.release
    client.force_login(world.people.rm)
    url = reverse("releases:release_update", args=[release.pk])
    assert client.get(url).status_code == 200
    data = _plan_post(world, name=release.name, version=release.version, description="Now with saved baskets.")
    data["release_manager"] = world.people.rm.pk
    data["planned_start"] = timezone.localtime(release.planned_start).strftime("%Y-%m-%dT%H:%M")
    data["planned_end"] = timezone.localtime(release.planned_end).strftime("%Y-%m-%dT%H:%M")
    answer = client.post(url, data)
    assert answer.status_code == 302
    assert world.reload().description == "Now with saved baskets."
    client.force_login(world.people.ci)
    assert client.post(url, data).status_code == 403


def _edit_post(world, rows: list[dict], **overrides) -> dict:
    """The edit page's post: the release's plan as it is, and one row of the units' form per dict (a
    release's unit names it with ``unit``); ``overrides`` change plan fields.
    """
    release = world.reload()
    data = {key: value for key, value in _plan_post(world).items() if not key.startswith("units-")}
    data |= {
        "name": release.name,
        "version": release.version,
        "description": release.description,
        "release_notes": release.release_notes,
        "release_manager": release.release_manager.pk,
        "planned_start": timezone.localtime(release.planned_start).strftime("%Y-%m-%dT%H:%M"),
        "planned_end": timezone.localtime(release.planned_end).strftime("%Y-%m-%dT%H:%M"),
        "units-TOTAL_FORMS": str(len(rows)),
        "units-INITIAL_FORMS": str(sum(1 for row in rows if "unit" in row)),
        "units-MIN_NUM_FORMS": "0",
        "units-MAX_NUM_FORMS": "20",
    }
    for index, row in enumerate(rows):
        data |= {f"units-{index}-{field}": value for field, value in row.items()}
    return data | overrides


def _row(unit, **changes) -> dict:
    """A row of the units' form showing ``unit`` as it is, with ``changes`` typed over it."""
    row = {
        "unit": unit.pk,
        "name": unit.name,
        "kind": unit.kind,
        "version": unit.version,
        "configuration_items": [ci.pk for ci in unit.configuration_items.all()],
        "reversible": "on" if unit.reversible else "",
    }
    return row | changes


def _units(release) -> dict:
    return {
        unit.name: (unit.version, sorted(ci.name for ci in unit.configuration_items.all()))
        for unit in release.units.all()
    }


@pytest.fixture
def two_units(world):
    """The world's release with a unit changing its CI and a database migration changing none."""
    add_unit(world)
    services.release_unit_add(release=world.release, actor=world.people.ci, name="shop-db", kind="database_migration")
    return world.release.units.get(name="shop-app"), world.release.units.get(name="shop-db")


def test_a_release_manager_changes_adds_and_removes_units_with_the_plan(client, world, two_units):
    app, db = two_units
    search_ci = ConfigurationItemFactory(name="search-index", environment=world.production, service=world.other_service)
    url = reverse("releases:release_update", args=[world.release.pk])
    client.force_login(world.people.rm)
    page = client.get(url).content.decode()
    assert 'value="shop-app"' in page
    assert "Remove this unit" in page
    rows = [
        _row(app, version="2.1", configuration_items=[world.ci.pk, search_ci.pk]),
        _row(db, DELETE="on"),
        {"name": "search-sync", "kind": "infrastructure_template", "configuration_items": [search_ci.pk]},
        {"kind": "application_artifact", "reversible": "on"},  # a blank row, skipped
    ]
    answer = client.post(url, _edit_post(world, rows, description="With the search index."))
    assert answer.status_code == 302
    release = world.reload()
    assert release.description == "With the search index."
    assert _units(release) == {
        "shop-app": ("2.1", ["search-index", "shop-app"]),
        "search-sync": ("", ["search-index"]),
    }
    actions = set(audit_events_for(release).values_list("action", flat=True))
    assert {"release.update", "release.unit_update", "release.unit_remove", "release.unit_add"} <= actions


def test_a_refused_edit_shows_every_problem_keeps_what_was_typed_and_changes_nothing(client, world, two_units):
    app, db = two_units
    before = _units(world.release)
    url = reverse("releases:release_update", args=[world.release.pk])
    client.force_login(world.people.rm)
    data = _edit_post(
        world,
        [_row(app, version="2.1"), _row(db, name=""), {"kind": "application_artifact", "version": "9"}],
        description="Not saved.",
    )
    data["planned_end"] = data["planned_start"]
    answer = client.post(url, data)
    assert answer.status_code == 422
    units = answer.context["units"]
    assert "planned_end" in answer.context["form"].errors
    assert "name" in units.forms[1].errors  # a unit of the release keeps a name
    assert "name" in units.forms[2].errors  # a version without a name
    page = answer.content.decode()
    assert 'value="2.1"' in page
    assert 'value="9"' in page
    assert "Not saved." in page
    release = world.reload()
    assert (release.description, _units(release)) == ("What it brings.", before)


def test_a_unit_of_another_release_cannot_be_edited_from_this_one(client, world, two_units):
    app, _db = two_units
    other = ReleaseFactory(services=[world.service])
    stranger = services.release_unit_add(release=other, actor=world.people.ci, name="x", kind="application_artifact")
    client.force_login(world.people.rm)
    answer = client.post(
        reverse("releases:release_update", args=[world.release.pk]),
        _edit_post(world, [_row(app, version="2.1"), _row(stranger, version="6")]),
    )
    assert answer.status_code == 422
    assert "unit" in answer.context["units"].forms[1].errors
    stranger.refresh_from_db()
    assert stranger.version == ""
    assert _units(world.reload())["shop-app"] == ("", ["shop-app"])


def test_the_units_of_a_deployed_release_are_not_edited(client, world, two_units):
    app, db = two_units
    Release.objects.filter(pk=world.release.pk).update(state=ReleaseState.DEPLOYED)
    before = _units(world.reload())
    url = reverse("releases:release_update", args=[world.release.pk])
    client.force_login(world.people.rm)
    answer = client.post(url, _edit_post(world, [_row(app, version="2.1"), _row(db, DELETE="on")]), follow=True)
    assert answer.redirect_chain == [(world.release.get_absolute_url(), 302)]
    assert "it is deployed" in answer.content.decode()
    assert _units(world.reload()) == before


@pytest.mark.parametrize("who", ["ci", "viewer", "so"])
def test_a_forged_edit_of_the_units_without_the_right_is_refused(client, world, two_units, who):
    app, db = two_units
    before = _units(world.reload())
    client.force_login(getattr(world.people, who))
    rows = [_row(app, version="2.1"), _row(db, DELETE="on"), {"name": "forged", "kind": "application_artifact"}]
    answer = client.post(reverse("releases:release_update", args=[world.release.pk]), _edit_post(world, rows))
    assert answer.status_code == 403
    assert _units(world.reload()) == before


# --- query counts ----------------------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("url_name", ["releases:release_list", "releases:package_list", "releases:approval_list"])
def test_lists_make_as_many_queries_for_ten_times_the_rows(client, world, url_name):
    def grow(count):
        for _ in range(count):
            release = ReleaseFactory(services=[world.service])
            ArtifactFactory(package=PackageFactory(release=release))
            Approval.objects.create(approver=world.people.so, release=release, decision="approved", reason="ok")

    client.force_login(world.people.viewer)
    url = reverse(url_name)
    grow(2)
    few = _queries(client, url)
    grow(18)
    assert _queries(client, url) == few


def test_the_package_page_of_a_validated_package(client, world):
    package = validated_package(world)
    client.force_login(world.people.viewer)
    page = client.get(package.get_absolute_url()).content.decode()
    assert "Validated by" in page
    assert "abc1234def"[:8] in page
    assert "SHOP-1" in page


def test_release_notes_are_rendered_from_markdown_without_raw_html(client, world):
    services.release_update(
        release=world.release, actor=world.people.rm, data={"release_notes": "**Bold** <script>alert(1)</script>"}
    )
    client.force_login(world.people.viewer)
    page = client.get(world.release.get_absolute_url()).content.decode()
    assert "<strong>Bold</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_rollback_steps_and_backup_evidence_are_posted_from_the_page_through_the_services(client, world):
    release, p = world.release, world.people
    client.force_login(p.rm)
    assert 'name="steps"' in client.get(release.get_absolute_url()).content.decode()
    url = reverse("releases:release_transition", args=[release.pk, "rollback_plan"])
    assert client.post(url, {"steps": "1. Redeploy 1.9"}).status_code == 302
    assert world.reload().rollback_plan.steps == "1. Redeploy 1.9"
    client.force_login(p.ci)
    evidence_url = reverse("releases:release_transition", args=[release.pk, "evidence"])
    answer = client.post(evidence_url, {"gate": "backups_verified", "note": "nightly", "link": "https://b.example/1"})
    assert answer.status_code == 302
    client.force_login(p.dm)
    page = client.get(release.get_absolute_url()).content.decode()
    assert "awaits verification" in page
    client.force_login(p.viewer)
    assert client.post(url, {"steps": "nothing"}).status_code == 403
    assert world.reload().rollback_plan.steps == "1. Redeploy 1.9"
