"""The registry: every built-in, executors registered in code, and plugins found through entry points."""

from importlib import metadata

import pytest

from deployments.executors.base import Executor, ExecutorError, StepOutcome, UnknownExecutor
from deployments.executors.registry import ENTRY_POINT_GROUP, ExecutorRegistry, available_executors, get_executor
from deployments.executors.simulator import SimulatorExecutor

BUILT_IN = {"command", "http_call", "http_health", "manual_intervention", "prometheus_gate", "simulator", "wait"}


class EchoExecutor(Executor):
    """A third-party executor, as a plugin package would ship it."""

    name = "echo"
    display_name = "Echo"

    def run(self, context):
        return StepOutcome.succeeded(f"echo {context.target}")


def _installed_plugins(monkeypatch, *values) -> list[str]:
    """Pretend distributions declare these entry points (importlib.metadata is outside our code); log lookups."""
    entry_points = metadata.EntryPoints(
        metadata.EntryPoint(name=f"plugin{number}", value=value, group=ENTRY_POINT_GROUP)
        for number, value in enumerate(values)
    )
    lookups = []

    def select(group):
        lookups.append(group)
        return entry_points.select(group=group)

    monkeypatch.setattr(metadata, "entry_points", select)
    return lookups


def test_every_built_in_executor_is_available():
    # given the default registry, when listed, then every built-in is there and can be had by name
    assert {executor.name for executor in available_executors()} >= BUILT_IN
    assert isinstance(get_executor("simulator"), SimulatorExecutor)


def test_entry_point_plugins_are_loaded_once(monkeypatch):
    # given an installed plugin, and a broken one
    lookups = _installed_plugins(monkeypatch, f"{__name__}:EchoExecutor", "no_such_module:Executor")
    registry = ExecutorRegistry()

    # when the executors are listed, and one is asked for
    names = {executor.name for executor in registry.available()}
    echo = registry.get("echo")

    # then the plugin joins the built-ins, the broken one is left out, and entry points were read once
    assert names == BUILT_IN | {"echo"}
    assert isinstance(echo, EchoExecutor)
    assert lookups == [ENTRY_POINT_GROUP]


def test_executors_registered_in_code_are_available_and_names_are_unique():
    # given a registry, when an executor is registered with the decorator, then it is available
    registry = ExecutorRegistry()
    registry.register(EchoExecutor)
    assert isinstance(registry.get("echo"), EchoExecutor)

    # and a second executor with a taken name is refused
    with pytest.raises(ExecutorError, match="'simulator' is taken"):

        @registry.register
        class Impostor(EchoExecutor):
            name = "simulator"


def test_unknown_executor_is_reported():
    # given no executor of that name, when asked for, then it says so
    with pytest.raises(UnknownExecutor, match="no executor named 'teleport'"):
        get_executor("teleport")
