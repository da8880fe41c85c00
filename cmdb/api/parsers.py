"""The body of ``POST /cis/import/``: the file itself (CSV or JSON), or a multipart form holding it, read as text
the importer checks. Text PostgreSQL cannot store, or too large a file, is refused here with a 400.
"""

import json
from pathlib import PurePath

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import BaseParser

from cmdb.choices import ImportFormat
from cmdb.models import json_scalars

# The largest file one import takes: some tens of thousands of CIs.
IMPORT_MAX_BYTES = 10 * 1024 * 1024
NUL_REFUSED = "The file contains a NUL character, which RDM cannot store."


class _ImportFileParser(BaseParser):
    """The body is the file: its text and format, for the importer to check row by row."""

    file_format: ImportFormat

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(IMPORT_MAX_BYTES + 1) if stream is not None else b""
        return checked_import_text(raw, self.file_format), self.file_format


class JsonImportParser(_ImportFileParser):
    media_type = "application/json"
    file_format = ImportFormat.JSON


class CsvImportParser(_ImportFileParser):
    media_type = "text/csv"
    file_format = ImportFormat.CSV


def import_source(request) -> tuple[str, ImportFormat]:
    """The file's text and format, from the body or from the multipart form's ``file``."""
    if isinstance(request.data, tuple):
        return request.data
    upload = request.FILES.get("file")
    if upload is None:
        raise ValidationError({"file": ["Send the file as the body (text/csv, application/json) or as `file`."]})
    suffix = PurePath(upload.name or "").suffix.lower().lstrip(".")
    if suffix not in ImportFormat.values:
        raise ValidationError({"file": [f"Name the file .csv or .json (it is {upload.name!r})."]})
    if upload.size > IMPORT_MAX_BYTES:
        raise ValidationError({"file": [f"At most {IMPORT_MAX_BYTES} bytes (it has {upload.size})."]})
    return checked_import_text(upload.read(), ImportFormat(suffix)), ImportFormat(suffix)


def checked_import_text(raw: bytes, file_format: ImportFormat) -> str:
    """The file's text, or ``ParseError`` saying why it cannot be imported at all (the browser's upload too)."""
    if len(raw) > IMPORT_MAX_BYTES:
        raise ParseError(f"The file is larger than {IMPORT_MAX_BYTES} bytes; split it.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ParseError(f"The file is not UTF-8 text: {error.reason} at byte {error.start}.") from None
    if "\x00" in text:
        raise ParseError(NUL_REFUSED)
    if file_format == ImportFormat.JSON and (problem := _json_problem(text)):
        raise ParseError(problem)
    return text


def _json_problem(text: str) -> str | None:
    """Why the JSON text cannot be imported whatever its rows say, or None. Text that is not JSON at all is
    left for the importer, which names the line.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    except (ValueError, RecursionError) as error:  # a number of thousands of digits, nesting past the limit
        return f"The JSON cannot be read: {error}."
    if any(isinstance(item, str) and "\x00" in item for item in json_scalars(value)):
        return NUL_REFUSED
    return None
