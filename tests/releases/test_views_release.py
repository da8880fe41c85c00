"""The release and package pages: who sees which buttons, forged posts refused, the plan's form, query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from releases import services
from releases.choices import PackageState, ReleaseState
from releases.models import Approval, Release, ReleasePackage
from releases.selectors import releases_awaiting_decision_by
from tests.releases.conftest import SHA, add_unit, green_release, validated_package
from tests.releases.factories import ArtifactFactory, PackageFactory, ReleaseFactory

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
