"""The audit trail as CSV, for auditors."""

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC

from rdm_site.models import AuditEvent

COLUMNS = ("id", *AuditEvent.HASHED_FIELDS, "hash")
# A spreadsheet runs a cell that starts like this as a formula; anyone who writes a reason could plant one.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file whose write() hands the line back, so csv.writer can feed a streaming response."""

    def write(self, line: str) -> str:
        return line


def audit_csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """A header, then one line per event with every hashed field (in blocks of lines), so the chain can be re-checked
    outside RDM.

    Text that a spreadsheet would run as a formula is prefixed with ``'``; such a cell no longer
    matches its hash, which is the price of opening the file safely.
    """
    writer = csv.writer(_Echo())
    yield from in_blocks(writer.writerow(row) for row in _rows(events))


def _rows(events: Iterable[AuditEvent]) -> Iterator[list]:
    yield list(COLUMNS)
    for event in events:
        yield _cells(event)


def in_blocks(lines: Iterable[str], size: int = 64 * 1024) -> Iterator[str]:
    """Lines joined into blocks of about ``size`` characters: a streamed export writes to the socket once a block,
    not once a line (which made a 2,000,000-event export take many times longer)."""
    block, length = [], 0
    for line in lines:
        block.append(line)
        length += len(line)
        if length >= size:
            yield "".join(block)
            block, length = [], 0
    if block:
        yield "".join(block)


def _cells(event: AuditEvent) -> list:
    cells = []
    for column in COLUMNS:
        value = getattr(event, column)
        if column == "occurred_at":
            value = value.astimezone(UTC).isoformat()
        elif column == "changes":
            value = json.dumps(value, sort_keys=True, ensure_ascii=False)
        elif isinstance(value, str) and value.startswith(_FORMULA_STARTS):
            value = "'" + value
        cells.append("" if value is None else value)
    return cells
