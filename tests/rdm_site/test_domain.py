"""The shared service helpers: every free text a person gives has a limit, and every problem is listed."""

import pytest

from rdm_site.domain import REASON_MAX_LENGTH, bounded_text, require_text, validated
from rdm_site.exceptions import InvalidInput
from tests.cmdb.factories import EnvironmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def test_a_reason_is_stripped_and_a_200000_character_one_refused_clearly():
    assert bounded_text("  because  ", "the reason") == "because"
    assert bounded_text(None, "the reason") == ""
    assert bounded_text("x" * REASON_MAX_LENGTH, "the reason") == "x" * REASON_MAX_LENGTH
    with pytest.raises(InvalidInput, match=r"^Shorten the reason to at most 2000 characters \(it has 200000\)\.$"):
        bounded_text("x" * 200_000, "the reason")


def test_a_mandatory_reason_must_be_given():
    with pytest.raises(InvalidInput, match=r"^Give the reason for the override\.$"):
        require_text("   ", "the reason for the override")


def test_validated_lists_every_problem_the_text_limits_included():
    # given a service whose description is 200,000 characters and whose name another service has
    ServiceFactory(name="Shop", slug="shop")
    service = ServiceFactory.build(name="Shop", slug="shop-2", owner=ServiceFactory().owner, description="x" * 200_000)
    # when it is validated / then both problems are named, each on its own line
    with pytest.raises(InvalidInput) as refusal:
        validated(service)
    assert refusal.value.errors == [
        "description: at most 20000 characters (it has 200000)",
        "name: Service with this Name already exists.",
    ]
    assert str(refusal.value).startswith("The service is not valid: description: at most 20000 characters")


def test_a_valid_record_passes():
    validated(EnvironmentFactory.build(name="qa", slug="qa", promotion_order=1))
