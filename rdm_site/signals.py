"""Who holds which power is evidence too: changes to a user's roles and to their staff, superuser and active
status are recorded in the audit trail, with the person who made them (``rdm_site.middleware.acting_user``;
None, RDM itself, outside a request). Role members are made staff, so the admin lets them in to do what their
roles allow.

Signals, because these changes come from everywhere (the admin, the demo loader, the shell, ``roles_sync``)
and the record must not depend on the path taken. Connected in ``RdmSiteConfig.ready``. Each change of the
groups relation is one event: replacing every role at once (Django removes, then adds) reads as two events
of the same request.
"""

from django.contrib.auth.models import User
from django.db.models.signals import m2m_changed, post_save, pre_save

from rdm_site.audit import audit_record
from rdm_site.middleware import acting_user
from rdm_site.models import Actor
from rdm_site.roles import roles_of, staff_grant

# The status fields whose every change is recorded.
STATUS_FIELDS = ("is_active", "is_staff", "is_superuser")

_STATUS_BEFORE = "_rdm_status_before"
_ROLES_BEFORE = "_rdm_roles_before"


def connect() -> None:
    for sender in (User, Actor):  # a proxy's saves are sent as its own
        pre_save.connect(_remember_status, sender=sender, dispatch_uid=f"rdm_user_status_before_{sender.__name__}")
        post_save.connect(_record_status, sender=sender, dispatch_uid=f"rdm_user_status_after_{sender.__name__}")
    m2m_changed.connect(_roles_changed, sender=User.groups.through, dispatch_uid="rdm_user_roles")


# --- staff, superuser and active status -----------------------------------------------------------


def _remember_status(sender, instance: User, update_fields=None, **kwargs) -> None:
    fields = [name for name in STATUS_FIELDS if update_fields is None or name in update_fields]
    if instance._state.adding or not fields:
        return
    before = sender.objects.filter(pk=instance.pk).values(*fields).first()
    setattr(instance, _STATUS_BEFORE, before)


def _record_status(sender, instance: User, created: bool, **kwargs) -> None:
    before = instance.__dict__.pop(_STATUS_BEFORE, None)
    if created or not before:
        return
    changes = {name: [old, getattr(instance, name)] for name, old in before.items() if getattr(instance, name) != old}
    if changes:
        audit_record(actor=acting_user(), action="user.update", target=instance, changes=changes)


# --- roles ----------------------------------------------------------------------------------------


def _members(instance, reverse: bool, pk_set) -> list[User]:
    """The users whose roles an m2m change touches: the user itself, or (from the group's side) its members."""
    if not reverse:
        return [instance]
    if pk_set is None:  # a group's members cleared
        return list(instance.user_set.all())
    return list(User.objects.filter(pk__in=pk_set))


def _roles_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if action.startswith("pre_"):
        users = _members(instance, reverse, pk_set)
        setattr(instance, _ROLES_BEFORE, {user.pk: (user, roles_of(user)) for user in users})
        return
    for user, before in instance.__dict__.pop(_ROLES_BEFORE, {}).values():
        after = roles_of(user)
        if after == before:
            continue
        audit_record(actor=acting_user(), action="user.roles_update", target=user, changes={"roles": [before, after]})
        if after:
            staff_grant(user)
