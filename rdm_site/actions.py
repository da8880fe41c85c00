"""What an actor may do with a record now: the one rule table that a record's services enforce and its
``<entity>_available_actions`` reports, so the API's ``actions`` and the browser's buttons cannot disagree
with the services.

An action is available when the actor may take it (role, ownership, segregation of duties) and the record's
state machine allows it from the current state. Conditions on other records (the checklist, windows,
quorum) are not part of it: the action is offered, and taking it explains every unmet condition (422).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import models
from django_fsm import can_proceed

from rdm_site.exceptions import IllegalTransition, NotAllowed

# (record, actor, attempt) -> the reasons the actor may not; None entries mean "no problem".
WhoRule = Callable[[models.Model, User | None, str], Iterable[str | None]]


@dataclass(frozen=True)
class ActionRule:
    """One action on a record: who may take it, and from which states (``transition``, a transition
    method of the record, or ``states``, when the action is not a transition of the record itself).
    ``attempt`` phrases it for refusals: "approve {record}".
    """

    who: WhoRule
    attempt: str
    transition: str | None = None
    states: tuple[str, ...] | None = None

    def who_problems(self, record, actor: User | None) -> list[str]:
        return [problem for problem in self.who(record, actor, self.phrase(record)) if problem]

    def legal(self, record) -> bool:
        if self.transition is not None:
            return can_proceed(getattr(record, self.transition), check_conditions=False)
        return self.states is None or record.state in self.states

    def phrase(self, record) -> str:
        return self.attempt.format(record=record)


def action_ensure(rules: dict[str, ActionRule], name: str, record, actor: User | None) -> None:
    """Refuse ``name`` as its service must: NotAllowed with every reason, else IllegalTransition."""
    rule = rules[name]
    problems = rule.who_problems(record, actor)
    if problems:
        raise NotAllowed(" ".join(problems))
    if not rule.legal(record):
        raise IllegalTransition(record, name, record.state)


def actions_available(rules: dict[str, ActionRule], record, actor: User | None) -> list[str]:
    """The names of the actions ``actor`` may take on ``record`` now, in the table's order."""
    return [name for name, rule in rules.items() if rule.legal(record) and not rule.who_problems(record, actor)]
