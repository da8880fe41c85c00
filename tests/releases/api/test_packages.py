"""``/api/v1/packages/`` and ``/api/v1/test-runs/``: a pipeline registers a build with everything it knows in one
atomic call, uploads test results (JUnit XML or JSON), and a manager validates or rejects the package.
"""

import pytest

from rdm_site.models import AuditEvent
from releases import services
from releases.choices import PackageState
from releases.junit import MAX_BYTES
from releases.models import ReleasePackage, ReleaseUnit, TestRun
from tests.releases.api.conftest import bearer, session
from tests.releases.conftest import SHA

pytestmark = pytest.mark.django_db

ARTIFACT = {"name": "shop.tar.gz", "uri": "https://artifacts.example/shop.tar.gz", "sha256": SHA.upper()}
JUNIT = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="regression">
    <testcase name="checkout"/>
    <testcase name="login"><failure message="boom"/></testcase>
    <testcase name="search">
      <properties><property name="severity" value="minor"/></properties>
      <failure message="slow"/>
    </testcase>
  </testsuite>
  <testsuite name="smoke"><testcase name="up"/></testsuite>
</testsuites>"""


def registration(world, **overrides) -> dict:
    return {
        "release": world.release.pk,
        "version": "2.0.0+118",
        "units": [{"name": "shop-app", "kind": "application_artifact", "configuration_items": [world.ci.pk]}],
        "artifacts": [ARTIFACT],
        "commits": [
            {"sha": "4f2a9c1", "author": "ann", "committed_at": "2026-03-02T09:15:00Z", "message": "Faster checkout"}
        ],
        "work_items": ["SHOP-123"],
        **overrides,
    }


@pytest.fixture
def pipeline(world):
    return bearer(world.people.ci, "packages")


@pytest.fixture
def package(world):
    return services.package_register(release=world.release, actor=world.people.ci, version="b1", artifacts=[ARTIFACT])


def test_a_pipeline_registers_a_package_with_units_artifacts_commits_and_work_items(world, pipeline):
    response = pipeline.post("/api/v1/packages/", registration(world), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == PackageState.ASSEMBLING
    assert body["built_by"] == "ci"
    assert body["artifacts"][0]["sha256"] == SHA  # digests compare in lower case
    assert body["commits"] == [{**registration(world)["commits"][0], "committed_at": "2026-03-02T09:15:00+00:00"}]
    assert body["first_commit_at"].startswith("2026-03-02T09:15:00")
    assert body["work_items"] == ["SHOP-123"]
    assert "mark_built" in body["actions"]
    unit = ReleaseUnit.objects.get(release=world.release)
    assert (unit.name, list(unit.configuration_items.all())) == ("shop-app", [world.ci])
    assert AuditEvent.objects.filter(action="package.register").count() == 1


def test_a_rebuild_updates_the_units_it_names_and_supersedes_the_previous_package(world, pipeline):
    first = pipeline.post("/api/v1/packages/", registration(world), format="json").json()
    units = [{"name": "shop-app", "kind": "application_artifact", "version": "2.0.1"}]
    second = pipeline.post("/api/v1/packages/", registration(world, version="b2", units=units), format="json")
    assert second.status_code == 201, second.content
    assert ReleasePackage.objects.get(pk=first["id"]).state == PackageState.SUPERSEDED
    assert ReleaseUnit.objects.get(release=world.release).version == "2.0.1"


def test_registration_is_all_or_nothing(world, pipeline):
    bad_unit = [{"name": "shop-app", "kind": "application_artifact"}, {"name": "x" * 300, "kind": "database_migration"}]
    response = pipeline.post("/api/v1/packages/", registration(world, units=bad_unit), format="json")
    assert response.status_code == 400
    bad_digest = registration(world, artifacts=[{**ARTIFACT, "sha256": "z" * 64}])
    assert pipeline.post("/api/v1/packages/", bad_digest, format="json").status_code == 400
    bad_commit = registration(world, commits=[{"sha": "abc", "committed_at": "yesterday"}])
    assert pipeline.post("/api/v1/packages/", bad_commit, format="json").status_code == 400
    assert not ReleasePackage.objects.exists()
    assert not ReleaseUnit.objects.exists()


def test_only_build_engineers_register_packages(world):
    for person in (world.people.rm, world.people.dm, world.people.viewer):
        response = session(person).post("/api/v1/packages/", registration(world), format="json")
        assert response.status_code == 403, person
    read_only = bearer(world.people.ci).post("/api/v1/packages/", registration(world), format="json")
    assert read_only.status_code == 403


def test_the_package_list_and_detail(world, package):
    client = session(world.people.viewer)
    listed = client.get(f"/api/v1/packages/?release={world.release.pk}&state=assembling")
    assert listed.json()["count"] == 1
    assert "actions" not in listed.json()["results"][0]
    detail = client.get(f"/api/v1/packages/{package.pk}/").json()
    assert detail["latest_test_runs"] == []
    assert detail["actions"] == []


def test_a_package_is_edited_while_assembling_and_immutable_once_validated(world, package, pipeline):
    url = f"/api/v1/packages/{package.pk}/"
    edited = pipeline.patch(url, {"notes": "Built on runner 7.", "work_items": ["SHOP-9"]}, format="json")
    assert edited.status_code == 200, edited.content
    assert edited.json()["work_items"] == ["SHOP-9"]
    assert pipeline.patch(url, {"state": "validated"}, format="json").json()["state"] == PackageState.ASSEMBLING
    pipeline.post(f"{url}mark-built/")
    session(world.people.dm).post(f"{url}validate/", {"reason": "Checked."}, format="json")
    assert pipeline.patch(url, {"notes": "again"}, format="json").status_code == 409


def test_artifacts_are_added_then_the_package_is_built_validated_or_rejected(world, pipeline):
    package = services.package_register(release=world.release, actor=world.people.ci, version="b1")
    url = f"/api/v1/packages/{package.pk}"
    assert pipeline.post(f"{url}/mark-built/").status_code == 422  # no artifact yet
    added = pipeline.post(f"{url}/artifacts/", {**ARTIFACT, "size_bytes": 1024}, format="json")
    assert added.status_code == 200, added.content
    assert added.json()["artifacts"][0]["size_bytes"] == 1024
    assert pipeline.post(f"{url}/mark-built/").json()["state"] == PackageState.BUILT
    assert session(world.people.ci).post(f"{url}/validate/").status_code == 403  # its builder
    assert session(world.people.dm).post(f"{url}/reject/", {}, format="json").status_code == 400  # no reason
    rejected = session(world.people.dm).post(f"{url}/reject/", {"reason": "Unsigned."}, format="json")
    assert rejected.json()["state"] == PackageState.REJECTED
    assert rejected.json()["rejection_reason"] == "Unsigned."


def test_validate(world, package, pipeline):
    pipeline.post(f"/api/v1/packages/{package.pk}/mark-built/")
    validated = session(world.people.rm).post(f"/api/v1/packages/{package.pk}/validate/")
    assert validated.json()["state"] == PackageState.VALIDATED
    assert validated.json()["validated_by"] == "rm"


# --- test results ---------------------------------------------------------------------------------


def test_junit_xml_in_the_body_becomes_one_test_run_per_suite(world, package, pipeline):
    response = pipeline.post(
        f"/api/v1/packages/{package.pk}/test-results/?link=https://ci.example/118",
        JUNIT,
        content_type="application/xml",
    )
    assert response.status_code == 201, response.content
    runs = {run["suite"]: run for run in response.json()}
    assert runs["regression"]["passed"] == 1
    assert (runs["regression"]["failed_major"], runs["regression"]["failed_minor"]) == (1, 1)
    assert runs["smoke"]["passed"] == 1
    assert runs["smoke"]["link"] == "https://ci.example/118"
    assert TestRun.objects.filter(package=package).count() == 2


def test_junit_xml_as_a_multipart_file(world, package, pipeline):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("junit.xml", JUNIT, content_type="application/xml")
    response = pipeline.post(f"/api/v1/packages/{package.pk}/test-results/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    assert len(response.json()) == 2


def test_json_results(world, package, pipeline):
    body = {"suites": [{"name": "e2e", "passed": 40, "failed": {"critical": 1}}], "link": "https://ci.example/9"}
    response = pipeline.post(f"/api/v1/packages/{package.pk}/test-results/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()[0]["failed_critical"] == 1
    detail = session(world.people.viewer).get(f"/api/v1/packages/{package.pk}/").json()
    assert [run["suite"] for run in detail["latest_test_runs"]] == ["e2e"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            b'<testsuite name="x"><testcase name="&lol2;"/></testsuite>',
            id="xml bomb",
        ),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><testsuite>&e;</testsuite>',
            id="external entity",
        ),
        pytest.param(b"<testsuite><testcase name='a'></testsuite", id="malformed"),
        pytest.param(b"<html><body/></html>", id="not junit"),
        pytest.param(b"<testsuite name='x'>" + b" " * MAX_BYTES + b"</testsuite>", id="oversized"),
    ],
)
def test_refused_xml_is_a_clear_400_and_records_nothing(world, package, pipeline, body):
    response = pipeline.post(f"/api/v1/packages/{package.pk}/test-results/", body, content_type="application/xml")
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"]
    assert not TestRun.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"suites": []},
        {"suites": "x"},
        {"suites": [{"name": "a", "passed": -1}]},
        {"suites": [{"name": "a", "failed": {"fatal": 1}}]},
        {"suites": [{"name": "a", "passed": 10**30}]},
        {"suites": [{"name": "a\x00"}]},
    ],
)
def test_refused_json_results_are_400(world, package, pipeline, body):
    response = pipeline.post(f"/api/v1/packages/{package.pk}/test-results/", body, format="json")
    assert response.status_code == 400, response.content
    assert not TestRun.objects.exists()


def test_a_reader_may_not_upload_results(world, package):
    response = session(world.people.viewer).post(
        f"/api/v1/packages/{package.pk}/test-results/", JUNIT, content_type="application/xml"
    )
    assert response.status_code == 403


def test_test_runs_are_recorded_and_listed(world, package, pipeline):
    made = pipeline.post(
        "/api/v1/test-runs/", {"package": package.pk, "suite": "regression", "passed": 5, "failed_major": 1}
    )
    assert made.status_code == 201, made.content
    assert made.json()["recorded_by"] == "ci"
    client = session(world.people.viewer)
    assert client.get(f"/api/v1/test-runs/?package={package.pk}&suite=regression").json()["count"] == 1
    assert client.get(f"/api/v1/test-runs/{made.json()['id']}/").status_code == 200
    assert pipeline.patch(f"/api/v1/test-runs/{made.json()['id']}/", {"passed": 9}).status_code == 405
    refused = session(world.people.dm).post("/api/v1/test-runs/", {"package": package.pk, "suite": "x"})
    assert refused.status_code == 403


def test_a_retried_registration_with_its_idempotency_key_registers_once(world, pipeline):
    first = pipeline.post("/api/v1/packages/", registration(world), format="json", HTTP_IDEMPOTENCY_KEY="build-118")
    again = pipeline.post("/api/v1/packages/", registration(world), format="json", HTTP_IDEMPOTENCY_KEY="build-118")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert ReleasePackage.objects.count() == 1
    other = pipeline.post(
        "/api/v1/packages/", registration(world, version="b9"), format="json", HTTP_IDEMPOTENCY_KEY="build-118"
    )
    assert other.status_code == 422


def test_a_results_link_that_is_no_url_is_refused(world, package, pipeline):
    url = f"/api/v1/packages/{package.pk}/test-results/?link=javascript:alert(1)"
    assert pipeline.post(url, JUNIT, content_type="application/xml").status_code == 400
    assert not TestRun.objects.exists()


def test_two_units_of_one_name_in_one_registration_register_nothing(world, pipeline):
    twice = [{"name": "shop-app", "kind": "application_artifact"}] * 2
    assert pipeline.post("/api/v1/packages/", registration(world, units=twice), format="json").status_code == 400
    assert not ReleasePackage.objects.exists()
