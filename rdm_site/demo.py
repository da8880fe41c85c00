"""Demo users, one per role (and an administrator). Loading twice changes nothing."""

import os

from django.contrib.auth.models import Group, User

from rdm_site.roles import Role, staff_grant

DEMO_PASSWORD = os.environ.get("RDM_DEMO_PASSWORD", "rdm-demo")

# username, full name, roles
DEMO_USERS: list[tuple[str, str, list[Role]]] = [
    ("rita.release", "Rita Release", [Role.RELEASE_MANAGER]),
    ("carl.cab", "Carl Cab", [Role.CHANGE_APPROVER]),
    ("emma.emergency", "Emma Emergency", [Role.EMERGENCY_APPROVER, Role.CHANGE_APPROVER]),
    ("dan.deploy", "Dan Deploy", [Role.DEPLOYMENT_MANAGER]),
    ("bill.build", "Bill Build", [Role.BUILD_ENGINEER]),
    ("sophie.owner", "Sophie Owner", [Role.SERVICE_OWNER]),
    ("oscar.owner", "Oscar Owner", [Role.SERVICE_OWNER]),
    ("vera.viewer", "Vera Viewer", [Role.VIEWER]),
]
DEMO_ADMIN = "admin"


def demo_users_load() -> list[User]:
    users = []
    for username, full_name, roles in DEMO_USERS:
        first_name, _, last_name = full_name.partition(" ")
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first_name, "last_name": last_name, "email": f"{username}@rdm.example"},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.set(Group.objects.filter(name__in=[role.value for role in roles]))
        staff_grant(user)  # done by the roles signal for new members; this repairs users loaded before the rule
        users.append(user)
    admin = User.objects.filter(username=DEMO_ADMIN).first() or User.objects.create_superuser(
        DEMO_ADMIN, f"{DEMO_ADMIN}@rdm.example", DEMO_PASSWORD, first_name="Ada"
    )
    return [*users, admin]


def demo_logins() -> list[tuple[str, str]]:
    """(username, roles) for the start-up banner."""
    rows = [(username, ", ".join(role.value for role in roles)) for username, _, roles in DEMO_USERS]
    return [*rows, (DEMO_ADMIN, "administrator (superuser)")]
