"""The API contract run counts what it sent, so that ``make fuzz`` can say how many requests it made.

Under pytest-xdist the count is made in a worker process: each worker hands its count to the controller when
it finishes (``workeroutput``), and the controller prints the sum.
"""

from tests.api.contract import REQUESTS


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker
        workeroutput["api_contract"] = {**REQUESTS, "operations": sorted(REQUESTS["operations"])}


def pytest_testnodedown(node, error):
    counted = getattr(node, "workeroutput", {}).get("api_contract")
    if counted:
        REQUESTS["sent"] += counted["sent"]
        REQUESTS["server_errors"] += counted["server_errors"]
        REQUESTS["operations"].update(counted["operations"])


def pytest_terminal_summary(terminalreporter):
    if REQUESTS["sent"]:
        terminalreporter.write_line(
            f"API contract: {REQUESTS['sent']} requests to {len(REQUESTS['operations'])} operations, "
            f"{REQUESTS['server_errors']} server errors"
        )
