"""JSON bodies, with what the standard parser lets through as a server error answered as bad input instead."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class RdmJSONParser(JSONParser):
    """A body nested past Python's recursion limit (``[[[[…]]]]``) is malformed input: 400, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
