"""Reading pipelines' test results: JUnit XML dialects and JSON, severities, and hostile or broken input refused."""

import pytest

from rdm_site.exceptions import InvalidInput
from releases.junit import MAX_BYTES, json_results_parse, junit_parse

REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="api">
    <properties><property name="severity" value="minor"/></properties>
    <testcase name="lists"/>
    <testcase name="creates"><failure message="boom"/></testcase>
    <testcase name="pays"><properties><property name="severity" value="critical"/></properties><error/></testcase>
    <testcase name="later"><skipped/></testcase>
  </testsuite>
  <testsuite name="ui">
    <testcase name="signs in"><failure/></testcase>
    <testcase name="signs out"/>
  </testsuite>
  <testsuite name="api"><testcase name="again"/></testsuite>
</testsuites>"""


def _counts(results):
    return {result.suite: result.as_test_run() for result in results}


def test_suites_are_read_with_failures_by_severity_and_same_named_suites_added_up():
    counts = _counts(junit_parse(REPORT))
    assert counts["api"] == {"suite": "api", "passed": 2, "failed_critical": 1, "failed_major": 0, "failed_minor": 1}
    # no severity anywhere: a failure counts as major, so it blocks the tests gate
    assert counts["ui"] == {"suite": "ui", "passed": 1, "failed_critical": 0, "failed_major": 1, "failed_minor": 0}


def test_a_single_testsuite_root_is_read_too():
    [result] = junit_parse(b'<testsuite name="smoke"><testcase name="up"/></testsuite>')
    assert (result.suite, result.passed) == ("smoke", 1)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><testsuite>&b;</testsuite>',
            "document type",
        ),
        (b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><testsuite/>', "document type"),
        (b"<testsuite><testcase>", "not well-formed"),
        (b"<html><body/></html>", "starts with <testsuites> or <testsuite>"),
        (b"", "not well-formed"),
        (b"<testsuites/>", "holds no test suite"),
        (
            b'<testsuite><testcase><properties><property name="severity" value="fatal"/></properties>'
            b"<failure/></testcase></testsuite>",
            "'fatal'",
        ),
    ],
)
def test_hostile_or_broken_xml_is_refused_with_a_clear_reason(document, message):
    with pytest.raises(InvalidInput, match=message):
        junit_parse(document)


def test_an_oversized_report_is_refused_before_parsing():
    with pytest.raises(InvalidInput, match="at most"):
        junit_parse(b" " * (MAX_BYTES + 1))


def test_json_results_are_read_and_checked():
    results = json_results_parse({"suites": [{"name": "api", "passed": 10, "failed": {"critical": 1}}]})
    assert results[0].as_test_run() == {
        "suite": "api",
        "passed": 10,
        "failed_critical": 1,
        "failed_major": 0,
        "failed_minor": 0,
    }
    with pytest.raises(InvalidInput) as refused:
        json_results_parse({"suites": [{"name": "x", "passed": -1, "failed": {"fatal": 1, "major": "2"}}]})
    assert len(refused.value.errors) == 3
    for bad in (None, [], {"suites": []}, {"suites": "x"}):
        with pytest.raises(InvalidInput):
            json_results_parse(bad)
