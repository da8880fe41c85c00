"""``/api/v1/promotions/``: a pipeline requests a continuous promotion and follows its stages; bad requests are
400 with nothing written, and only those who may deploy may ask."""

import pytest

from deployments.choices import PromotionStageState, PromotionState
from deployments.models import Promotion, PromotionStage
from tests.deployments.api.conftest import list_queries, session_client, token_client
from tests.deployments.promotion_world import make_pipeline

pytestmark = pytest.mark.django_db
URL = "/api/v1/promotions/"


@pytest.fixture
def pipeline():
    return make_pipeline()


def test_a_pipeline_requests_a_promotion_and_reads_its_stages(pipeline):
    # given the pipeline's token, for deployments and the standard change it needs
    api = token_client(pipeline.ci, "deployments", "releases")

    # when it asks for the package to go everywhere
    answer = api.post(URL, {"package": pipeline.package.pk, "template": pipeline.template.pk}, format="json")

    # then the first stage is deploying and the rest wait, in promotion order
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["state"] == PromotionState.RUNNING
    assert [(s["environment_name"], s["state"]) for s in body["stages"]] == [
        ("dev", "running"),
        ("test", "pending"),
        ("staging", "pending"),
        ("production", "pending"),
    ]
    assert body["stages"][0]["deployment"] is not None
    detail = api.get(f"{URL}{body['id']}/")
    assert detail.status_code == 200
    assert detail.json()["stages"] == body["stages"]


def test_chosen_environments_and_bad_requests(pipeline):
    api = token_client(pipeline.ci, "deployments", "releases")
    dev, _, staging, _ = pipeline.environments
    base = {"package": pipeline.package.pk, "template": pipeline.template.pk}

    chosen = api.post(URL, {**base, "environments": [staging.pk, dev.pk]}, format="json")
    assert chosen.status_code == 201
    assert [s["environment_name"] for s in chosen.json()["stages"]] == ["dev", "staging"]

    for environments in ("some", [], [True], [dev.pk, 999999]):
        refused = api.post(URL, {**base, "environments": environments}, format="json")
        assert refused.status_code == 400, environments
    twice = api.post(URL, {**base, "environments": [dev.pk, dev.pk]}, format="json")
    assert twice.status_code == 400
    assert "an environment is named twice" in twice.content.decode()
    assert Promotion.objects.count() == 1


def test_who_may_request_and_read(pipeline):
    viewer = session_client(pipeline.world.people.viewer)
    body = {"package": pipeline.package.pk, "template": pipeline.template.pk}
    assert viewer.post(URL, body, format="json").status_code == 403
    assert viewer.get(URL).status_code == 200
    assert not Promotion.objects.exists()
    assert session_client(pipeline.world.people.dm).post(URL, body, format="json").status_code == 201


def test_the_list_costs_the_same_for_ten_times_the_rows(pipeline):
    api = session_client(pipeline.world.people.viewer)

    def grow(count):
        for _ in range(count):
            promotion = Promotion.objects.create(
                package=pipeline.package,
                process=pipeline.process,
                service=pipeline.world.service,
                template=pipeline.template,
                requested_by=pipeline.ci,
            )
            PromotionStage.objects.bulk_create(
                PromotionStage(
                    promotion=promotion, position=n, environment=environment, state=PromotionStageState.PENDING
                )
                for n, environment in enumerate(pipeline.environments)
            )

    grow(2)
    few = list_queries(api, URL, 2)
    grow(18)
    assert list_queries(api, URL + "?limit=50", 20) == few
