"""Run one of the commands an administrator allowed (a deploy script, a CLI), never an arbitrary one.

Administrators list the commands in the setting ``RDM_ALLOWED_COMMANDS``: name → argv, where ``{name}``
in an argument is filled from the step's ``arguments`` (or ``{target}``, the target's name). There is no
shell, so a value can never become a second command.

At-least-once: a command cannot be handed an idempotency key the way an HTTP API can be, so if the worker
is lost (or the command times out) after the command did its work, it will run again. Commands must be
safe to repeat; they receive ``RDM_IDEMPOTENCY_KEY`` to recognise a repeat.
"""

import os
import re
import signal
import subprocess
from typing import Any

from django.conf import settings

from deployments.executors.base import Executor, Parameter, ParameterType, StepContext, StepOutcome, backoff

PLACEHOLDER = re.compile(r"\{(\w+)\}")
OUTPUT_CHARS = 10_000  # of each stream, the end, which is where errors are


class CommandExecutor(Executor):
    """The child gets a clean environment (PATH, LANG and the step's RDM_* values), never the worker's secrets."""

    name = "command"
    display_name = "Command"
    description = "Runs a command the administrator allowed, with the step's arguments; at-least-once."
    parameters_schema = (
        Parameter("command", ParameterType.STRING, "Name of an allowed command (RDM_ALLOWED_COMMANDS).", required=True),
        Parameter("arguments", ParameterType.MAPPING, "Values for the command's {placeholders}.", default={}),
        Parameter(
            "timeout", ParameterType.NUMBER, "Seconds before the command is killed.", default=60, minimum=1, maximum=80
        ),
    )

    def check(self, parameters: dict[str, Any]) -> list[str]:
        name = parameters.get("command")
        argv = settings.RDM_ALLOWED_COMMANDS.get(name)
        if argv is None:
            return [f"command: {name!r} is not an allowed command"] if name else []
        arguments = parameters.get("arguments", {})
        placeholders = {match for part in argv for match in PLACEHOLDER.findall(part)}
        problems = [
            f"arguments: {key!r} must be text" for key, value in arguments.items() if not isinstance(value, str)
        ]
        problems += [f"arguments: {key!r} is not used by {name}" for key in arguments if key not in placeholders]
        if "target" in arguments:
            problems.append("arguments: 'target' is reserved for the target's name")
        missing = placeholders - set(arguments) - {"target"}
        problems += [f"arguments: {key!r} is needed by {name}" for key in sorted(missing)]
        return problems

    def run(self, context: StepContext) -> StepOutcome:
        name, timeout = context.parameters["command"], context.parameters["timeout"]
        values = {**context.parameters["arguments"], "target": context.target}
        argv = [
            PLACEHOLDER.sub(lambda match: values[match.group(1)], part) for part in settings.RDM_ALLOWED_COMMANDS[name]
        ]
        context.log(f"running {name}: {argv}")
        try:
            process = subprocess.Popen(
                argv,
                env=_child_environment(context),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,  # so a timeout kills the command's children too
            )
        except OSError as error:
            return StepOutcome.failed(f"{name} could not start: {error}")
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            return StepOutcome.failed(
                f"{name} timed out after {timeout:g} s and was killed; it may have had its effect (at-least-once)",
                retry_after=backoff(context.attempt),
                **_captured(stdout, stderr),
            )
        output = {"exit_code": process.returncode, **_captured(stdout, stderr)}
        if process.returncode == 0:
            return StepOutcome.succeeded(f"{name} succeeded", **output)
        return StepOutcome.failed(f"{name} exited with status {process.returncode}", **output)


def _child_environment(context: StepContext) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "RDM_IDEMPOTENCY_KEY": context.idempotency_key,
        "RDM_TARGET": context.target,
        "RDM_STEP_ID": str(context.step_id),
        "RDM_DEPLOYMENT_ID": str(context.deployment_id),
        "RDM_ATTEMPT": str(context.attempt),
    }


def _captured(stdout: str, stderr: str) -> dict[str, str]:
    return {"stdout": stdout[-OUTPUT_CHARS:], "stderr": stderr[-OUTPUT_CHARS:]}
