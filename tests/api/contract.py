"""The published OpenAPI schema, loaded once for the contract tests (schemathesis) and called in-process."""

import os

import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from schemathesis.config import SchemathesisConfig

# Examples per operation: a few generated ones in the suite; ``make fuzz`` asks for many more and adds the coverage
# phase (every boundary and invalid value schemathesis derives from the schema), thousands of requests in all.
LONG_RUN = "RDM_API_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("RDM_API_FUZZ_EXAMPLES", "4"))
REQUESTS = {"sent": 0, "server_errors": 0, "operations": set()}


def published_schema() -> schemathesis.BaseSchema:
    """The schema exactly as ``/api/schema/`` serves it, bound to the WSGI application."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    config = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": LONG_RUN}}})
    schema = schemathesis.openapi.from_dict(_plain(document), config=config)
    schema.app = get_wsgi_application()
    return schema


def _plain(value):
    """drf-spectacular's document holds lazy strings and ordered dicts; schemathesis wants plain JSON types."""
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
