"""The one small interface every executor implements, built-in or third-party.

Contract, which the orchestrator relies on:

- An executor is stateless. Everything a call needs is in its ``StepContext``; a step that is waiting is
  simply run again later with the same context (a newer ``now``, maybe an ``answer``).
- Calls run in threads of a worker process, many at once (``deployments.engine.runner``): a call uses its
  context only, never the database, and shares nothing it changes with other calls.
- A call stays short. An executor never sleeps for long: it returns ``waiting`` with ``wait_until`` and the
  orchestrator records that as "due at" and calls again then. Likewise a transient failure returns
  ``retry_after`` and the orchestrator decides, within its bounded retries, whether to call again.
- An effect happens once per ``idempotency_key``: executors pass it to whatever they act on (as the
  ``Idempotency-Key`` header, or an environment variable for commands), and a retry reuses it.
- ``parameters`` in the context are already substituted (``deployments.variables``) and validated
  (``Executor.validate``). ``log`` writes a StepLog line; the orchestrator masks secrets in it.
"""

from __future__ import annotations

import copy
import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 300


class ExecutorError(Exception):
    """Base of the executor errors."""


class ExecutorParameterError(ExecutorError):
    """Parameters an executor cannot run with; lists every problem at once."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class UnknownExecutor(ExecutorError, LookupError):
    """No executor of that name is registered."""


class OutcomeStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    WAITING = "waiting"


@dataclass(frozen=True)
class StepContext:
    """What one call of an executor knows about its step; the orchestrator builds it from the database."""

    step_id: int
    deployment_id: int
    target: str
    target_attributes: Mapping[str, Any]
    parameters: Mapping[str, Any]
    idempotency_key: str
    attempt: int  # 1 for the first try
    started_at: datetime  # when the step first started: waits and deadlines count from here
    now: datetime
    log: Callable[[str], None]
    answer: str | None = None  # a manual intervention's answer ("proceed" or "abort"), once given


@dataclass(frozen=True)
class StepOutcome:
    """What a call achieved; ``retry_after`` marks a failure as transient, ``wait_until`` says when to call again."""

    status: OutcomeStatus
    message: str
    retry_after: float | None = None  # seconds; only for a transient failure
    wait_until: datetime | None = None  # only, and always, for waiting
    output: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if (self.status == OutcomeStatus.WAITING) != (self.wait_until is not None):
            raise ValueError("wait_until is set exactly when the outcome is waiting")
        if self.retry_after is not None and self.status != OutcomeStatus.FAILED:
            raise ValueError("retry_after is only for a failed outcome")

    @classmethod
    def succeeded(cls, message: str, **output: Any) -> StepOutcome:
        return cls(OutcomeStatus.SUCCEEDED, message, output=output)

    @classmethod
    def failed(cls, message: str, *, retry_after: float | None = None, **output: Any) -> StepOutcome:
        return cls(OutcomeStatus.FAILED, message, retry_after=retry_after, output=output)

    @classmethod
    def waiting(cls, message: str, *, until: datetime, **output: Any) -> StepOutcome:
        return cls(OutcomeStatus.WAITING, message, wait_until=until, output=output)

    @property
    def transient(self) -> bool:
        return self.status == OutcomeStatus.FAILED and self.retry_after is not None


def backoff(attempt: int) -> float:
    """Seconds before retrying a transient failure: doubling from 5 s, at most 5 minutes."""
    return min(RETRY_BASE_SECONDS * 2 ** (max(attempt, 1) - 1), RETRY_MAX_SECONDS)


class ParameterType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    MAPPING = "mapping"
    LIST = "list"


_TRUE_WORDS = {"true", "yes", "on", "1"}
_FALSE_WORDS = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Parameter:
    """One parameter an executor takes, described for the process editor and the API.

    Text is converted to the declared type, since a substituted variable is always text ("30" → 30).
    """

    name: str
    type: ParameterType
    help: str
    required: bool = False
    default: Any = None
    secret: bool = False  # shown masked, and its value masked in logs
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": str(self.type),
            "help": self.help,
            "required": self.required,
            "default": self.default,
            "secret": self.secret,
            "choices": list(self.choices),
            "minimum": self.minimum,
            "maximum": self.maximum,
        }

    def clean(self, value: Any) -> Any:
        """The value in its declared type; ValueError says what is wrong with it."""
        value = _CONVERTERS[self.type](value)
        if self.choices and value not in self.choices:
            raise ValueError("must be one of " + ", ".join(map(str, self.choices)))
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum:g}")
        return value


def _to_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


def _to_integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError("must be a whole number")


def _to_number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    else:
        raise ValueError("must be a number")
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise ValueError("must be true or false")


def _of_type(kind: type, description: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if not isinstance(value, kind):
            raise ValueError(f"must be {description}")
        return value

    return convert


_CONVERTERS: dict[ParameterType, Callable[[Any], Any]] = {
    ParameterType.STRING: _to_string,
    ParameterType.INTEGER: _to_integer,
    ParameterType.NUMBER: _to_number,
    ParameterType.BOOLEAN: _to_boolean,
    ParameterType.MAPPING: _of_type(dict, "a mapping of names to values"),
    ParameterType.LIST: _of_type(list, "a list"),
}


class Executor(ABC):
    """Runs one kind of step on one target. Subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str]  # stable identifier stored with each step, e.g. "http_call"
    display_name: ClassVar[str]
    description: ClassVar[str] = ""
    parameters_schema: ClassVar[tuple[Parameter, ...]] = ()

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "display_name": cls.display_name,
            "description": cls.description,
            "parameters": [parameter.describe() for parameter in cls.parameters_schema],
        }

    @classmethod
    def secret_parameters(cls) -> set[str]:
        return {parameter.name for parameter in cls.parameters_schema if parameter.secret}

    def validate(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Cleaned parameters with defaults filled in, or ExecutorParameterError naming every problem."""
        schema = {parameter.name: parameter for parameter in self.parameters_schema}
        problems = [f"{name}: unknown parameter" for name in parameters if name not in schema]
        cleaned: dict[str, Any] = {}
        for name, parameter in schema.items():
            value = parameters.get(name)
            if value is None or value == "":
                if parameter.required:
                    problems.append(f"{name}: is required")
                else:
                    cleaned[name] = copy.deepcopy(parameter.default)
                continue
            try:
                cleaned[name] = parameter.clean(value)
            except ValueError as error:
                problems.append(f"{name}: {error}")
        problems += self.check(cleaned)
        if problems:
            raise ExecutorParameterError(problems)
        return cleaned

    def check(self, parameters: dict[str, Any]) -> list[str]:
        """Problems beyond one parameter's type and range. Gets only the parameters that cleaned, so use .get()."""
        return []

    @abstractmethod
    def run(self, context: StepContext) -> StepOutcome:
        """Do the step's work once (idempotently), or report how far it got."""

    def rollback(self, context: StepContext) -> StepOutcome:
        """Undo the step's effect on the target; most steps have nothing to undo."""
        return StepOutcome.succeeded("nothing to roll back")
