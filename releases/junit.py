"""Test results as pipelines send them: JUnit XML (any of the usual dialects) or JSON, read into one result per
suite with its failures by severity, ready for ``test_run_record``.

Severity comes from a ``<property name="severity" value="critical|major|minor"/>`` on the test case (or on its
suite, for every case in it); without one a failed case counts as ``DEFAULT_SEVERITY`` (major), so that an
unlabelled failure blocks the tests gate rather than slipping through. ``<error>`` counts like ``<failure>``;
skipped cases count as neither passed nor failed. XML is parsed with defusedxml: a document type, an entity
or an external reference is refused (no billion laughs, no file or network reads), and so is anything over
``MAX_BYTES``.
"""

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from rdm_site.exceptions import InvalidInput

MAX_BYTES = 10 * 1024 * 1024
SEVERITIES = ("critical", "major", "minor")
DEFAULT_SEVERITY = "major"
MAX_SUITES = 500
_REFUSED = {
    "DTDForbidden": "a document type",
    "EntitiesForbidden": "an entity",
    "ExternalReferenceForbidden": "an external reference",
}


@dataclass
class SuiteResult:
    """One suite's outcome, in the shape of a TestRun."""

    suite: str
    passed: int = 0
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))

    def add(self, other: "SuiteResult") -> None:
        self.passed += other.passed
        for severity in SEVERITIES:
            self.failed[severity] += other.failed[severity]

    def as_test_run(self) -> dict:
        return {
            "suite": self.suite,
            "passed": self.passed,
            "failed_critical": self.failed["critical"],
            "failed_major": self.failed["major"],
            "failed_minor": self.failed["minor"],
        }


def junit_parse(content: bytes, *, default_suite: str = "tests") -> list[SuiteResult]:
    """Every suite of a JUnit XML report (suites of the same name are added up), or InvalidInput saying why not."""
    if len(content) > MAX_BYTES:
        raise InvalidInput(f"The JUnit report is {len(content)} bytes; at most {MAX_BYTES} are accepted.")
    try:
        root = fromstring(content, forbid_dtd=True)
    except DefusedXmlException as refused:
        what = _REFUSED.get(type(refused).__name__, "forbidden content")
        raise InvalidInput(
            f"The JUnit report is refused: it declares {what} (document types, entities and external references "
            "are not accepted)."
        ) from None
    except ParseError as error:
        raise InvalidInput(f"The JUnit report is not well-formed XML: {error}.") from None
    if root.tag == "testsuite":
        suites = [root]
    elif root.tag == "testsuites":
        suites = list(root.iter("testsuite"))
    else:
        raise InvalidInput(f"A JUnit report starts with <testsuites> or <testsuite>, not <{root.tag}>.")
    results: dict[str, SuiteResult] = {}
    for element in suites:
        result = _suite(element, default_suite)
        results.setdefault(result.suite, SuiteResult(result.suite)).add(result)
    if not results:
        raise InvalidInput("The JUnit report holds no test suite.")
    if len(results) > MAX_SUITES:
        raise InvalidInput(f"The JUnit report holds {len(results)} suites; at most {MAX_SUITES} are accepted.")
    return list(results.values())


def _suite(element: Element, default_suite: str) -> SuiteResult:
    name = (element.get("name") or default_suite).strip()[:100] or default_suite
    result = SuiteResult(name)
    suite_severity = _severity(element, DEFAULT_SEVERITY, where=f"suite {name!r}")
    for case in element.findall("testcase"):
        if case.find("skipped") is not None:
            continue
        if case.find("failure") is not None or case.find("error") is not None:
            where = f"test case {case.get('name', '?')!r} of suite {name!r}"
            result.failed[_severity(case, suite_severity, where=where)] += 1
        else:
            result.passed += 1
    return result


def _severity(element: Element, default: str, *, where: str) -> str:
    for prop in element.findall("properties/property"):
        if prop.get("name") == "severity":
            value = (prop.get("value") or prop.text or "").strip().lower()
            if value not in SEVERITIES:
                raise InvalidInput(f"The severity {value!r} of {where} is not one of {', '.join(SEVERITIES)}.")
            return value
    return default


def json_results_parse(data, *, default_suite: str = "tests") -> list[SuiteResult]:
    """Results posted as JSON: ``{"suites": [{"name", "passed", "failed": {"critical", "major", "minor"}}]}``."""
    suites = data.get("suites") if isinstance(data, dict) else None
    if not isinstance(suites, list) or not suites:
        raise InvalidInput('Post {"suites": [{"name": …, "passed": n, "failed": {"critical": n, …}}, …]}.')
    if len(suites) > MAX_SUITES:
        raise InvalidInput(f"At most {MAX_SUITES} suites are accepted in one request.")
    results: dict[str, SuiteResult] = {}
    problems = []
    for index, suite in enumerate(suites, start=1):
        if not isinstance(suite, dict):
            problems.append(f"suite {index}: an object is expected")
            continue
        name = str(suite.get("name") or default_suite).strip()[:100]
        result = SuiteResult(name)
        counts = {"passed": suite.get("passed", 0), **(suite.get("failed") or {})}
        for key, value in counts.items():
            if key != "passed" and key not in SEVERITIES:
                problems.append(f"suite {index}: unknown severity {key!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000_000:
                problems.append(f"suite {index}: {key} must be a whole number from 0 to 10,000,000")
            elif key == "passed":
                result.passed = value
            else:
                result.failed[key] = value
        results.setdefault(name, SuiteResult(name)).add(result)
    if problems:
        raise InvalidInput("The test results are not valid: " + "; ".join(problems), problems)
    return list(results.values())
