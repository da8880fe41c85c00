"""Which executors exist: the built-ins, those registered in code, and third-party plugins.

A plugin package adds an executor by declaring an entry point in the ``rdm.executors`` group whose
object is an ``Executor`` subclass::

    [project.entry-points."rdm.executors"]
    helm = "rdm_helm.executor:HelmExecutor"

Entry points are loaded once per process, on first use. A plugin that fails to load, or whose name is
already taken, is logged and left out: one broken plugin must not stop every deployment.
"""

import inspect
import logging
import threading
from importlib import metadata

from deployments.executors.base import Executor, ExecutorError, UnknownExecutor
from deployments.executors.command import CommandExecutor
from deployments.executors.http_call import HttpCallExecutor
from deployments.executors.http_health import HttpHealthExecutor
from deployments.executors.manual_intervention import ManualInterventionExecutor
from deployments.executors.prometheus_gate import PrometheusGateExecutor
from deployments.executors.simulator import SimulatorExecutor
from deployments.executors.wait import WaitExecutor

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "rdm.executors"
BUILTIN_EXECUTORS = (
    HttpCallExecutor,
    HttpHealthExecutor,
    PrometheusGateExecutor,
    ManualInterventionExecutor,
    WaitExecutor,
    SimulatorExecutor,
    CommandExecutor,
)


class ExecutorRegistry:
    def __init__(self) -> None:
        self._classes: dict[str, type[Executor]] = {}
        self._plugins_loaded = False
        self._lock = threading.Lock()
        for executor_class in BUILTIN_EXECUTORS:
            self.register(executor_class)

    def register(self, executor_class: type[Executor]) -> type[Executor]:
        """Add an executor (usable as a class decorator); a second executor of the same name is an error."""
        if not (isinstance(executor_class, type) and issubclass(executor_class, Executor)):
            raise ExecutorError(f"{executor_class!r} is not an Executor subclass")
        if inspect.isabstract(executor_class):
            raise ExecutorError(f"{executor_class.__qualname__} does not implement every abstract method")
        name = getattr(executor_class, "name", "")
        if not name:
            raise ExecutorError(f"{executor_class.__qualname__} has no name")
        registered = self._classes.setdefault(name, executor_class)
        if registered is not executor_class:
            raise ExecutorError(f"executor name {name!r} is taken by {registered.__module__}.{registered.__qualname__}")
        return executor_class

    def get(self, name: str) -> Executor:
        self._load_plugins()
        try:
            return self._classes[name]()
        except KeyError:
            raise UnknownExecutor(f"no executor named {name!r}") from None

    def available(self) -> list[type[Executor]]:
        """Every executor class, by name."""
        self._load_plugins()
        return [self._classes[name] for name in sorted(self._classes)]

    def _load_plugins(self) -> None:
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
                try:
                    self.register(entry_point.load())
                except Exception:
                    logger.exception("executor plugin %s = %s was left out", entry_point.name, entry_point.value)


registry = ExecutorRegistry()
register = registry.register


def get_executor(name: str) -> Executor:
    return registry.get(name)


def available_executors() -> list[type[Executor]]:
    return registry.available()
