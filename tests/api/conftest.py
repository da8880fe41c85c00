"""The API contract run counts what it sent, so that ``make fuzz`` can say how many requests it made."""

from tests.api.contract import REQUESTS


def pytest_terminal_summary(terminalreporter):
    if REQUESTS["sent"]:
        terminalreporter.write_line(
            f"API contract: {REQUESTS['sent']} requests to {len(REQUESTS['operations'])} operations, "
            f"{REQUESTS['server_errors']} server errors"
        )
