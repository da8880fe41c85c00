"""Variables in step parameters, and keeping secret values out of every log and page.

Parameters name variables Octopus-style: ``"https://#{Host}/deploy?version=#{Version}"``. ``##{`` stands
for a literal ``#{``. A substituted value is inserted as is, never substituted again, so a value that
happens to contain ``#{...}`` cannot pull in another variable.
"""

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "********"
_REFERENCE = re.compile(r"#(#?)\{([^{}]+)\}")


class UnknownVariablesError(Exception):
    """Parameters name variables that are not defined; every unknown name is listed at once."""

    def __init__(self, names: Iterable[str]):
        self.names = sorted(set(names))
        super().__init__("unknown variables: " + ", ".join(self.names))


def _rewrite_references(parameters: dict[str, Any], replace, unknown: set[str]) -> dict[str, Any]:
    """Apply ``replace`` to every reference in the strings of ``parameters`` (at any depth); then report
    every name ``replace`` collected in ``unknown`` at once."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _REFERENCE.sub(replace, value)
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    result = walk(parameters)
    if unknown:
        raise UnknownVariablesError(unknown)
    return result


def substitute(parameters: dict[str, Any], variables: dict[str, str]) -> dict[str, Any]:
    """A copy of ``parameters`` with every ``#{Name}`` in its strings (at any depth) replaced by its value."""
    unknown: set[str] = set()

    def replace(match: re.Match) -> str:
        escaped, name = match.groups()
        if escaped:
            return "#{" + name + "}"
        if name not in variables:
            unknown.add(name)
            return match.group(0)
        return variables[name]

    return _rewrite_references(parameters, replace, unknown)


def substitute_public(
    parameters: dict[str, Any], public: dict[str, str], secret_names: Iterable[str]
) -> dict[str, Any]:
    """Plan-time substitution: public values filled in, secret references kept for run time.

    The result is substituted again when the step runs, with the secret values only; so everything it
    holds that must stay literal is written escaped (``##{``): escapes already in the parameters, and any
    ``#{`` inside a public value. Unknown names are reported at once, as by ``substitute``.
    """
    secrets = set(secret_names)
    unknown: set[str] = set()

    def replace(match: re.Match) -> str:
        escaped, name = match.groups()
        if escaped or name in secrets:
            return match.group(0)
        if name not in public:
            unknown.add(name)
            return match.group(0)
        return public[name].replace("#{", "##{")

    return _rewrite_references(parameters, replace, unknown)


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``********``, also where it appears URL-encoded or JSON-escaped."""
    forms = {form for secret in secrets if secret for form in _written_forms(secret)}
    if not forms:
        return text
    # Longest first, so a secret containing another is masked whole rather than leaving a tail behind.
    pattern = re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)))
    return pattern.sub(MASK, text)


def _written_forms(secret: str) -> set[str]:
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
