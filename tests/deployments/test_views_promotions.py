"""The promotion pages: the list and a promotion's stages as a row of steps, with where and why it stopped;
queries do not grow with rows; only those who may view deployments see them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deployments.choices import PromotionStageState
from deployments.models import Promotion, PromotionStage
from releases.choices import GateCode
from tests.deployments.promotion_world import CONTINUOUS_GATES, drive_promotion, make_pipeline
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_a_stopped_promotion_shows_each_stage_and_why_it_stopped(client):
    gates = {**CONTINUOUS_GATES, "staging": [GateCode.TESTS_PASSED, GateCode.BACKUPS_VERIFIED]}
    pipeline = make_pipeline(gates=gates)
    promotion = drive_promotion(pipeline.request())
    client.force_login(pipeline.world.people.viewer)

    page = client.get(promotion.get_absolute_url()).content.decode()

    assert 'class="steps steps-counter' in page
    for name in ("dev", "test", "staging", "production"):
        assert f'data-stage="{name}"' in page
    assert "no backup evidence posted" in page
    assert "Not reached." in page
    dev = promotion.stages.get(environment__name="dev")
    assert dev.deployment.get_absolute_url() in page
    listing = client.get(reverse("deployments:promotion_list")).content.decode()
    assert promotion.get_absolute_url() in listing
    assert "Stopped" in listing


def test_the_pages_cost_the_same_for_more_rows_and_need_the_view_permission(client):
    pipeline = make_pipeline()
    client.force_login(pipeline.world.people.viewer)

    def grow(count):
        made = []
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
            made.append(promotion)
        return made

    first = grow(2)[0]
    url = reverse("deployments:promotion_list")
    few, detail = _queries(client, url), _queries(client, first.get_absolute_url())
    grow(18)
    assert _queries(client, url) == few
    assert _queries(client, first.get_absolute_url()) == detail

    client.force_login(UserFactory(username="nobody", roles=[]))
    assert client.get(url).status_code == 403
    assert client.get(first.get_absolute_url()).status_code == 403
