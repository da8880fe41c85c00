"""The people (the demo's users and more of every role), environments, services, policies, templates and processes."""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.utils.text import slugify

from bench.scale_data.base import Year, weighted
from bench.scale_data.tables import DOMAINS, ENVIRONMENTS, FUNCTIONS, GENERATED_PREFIX, STEP_NAMES
from cmdb.choices import Criticality
from cmdb.models import Environment, Service
from deployments.models import (
    DeploymentProcess,
    StepTemplate,
)
from rdm_site.demo import DEMO_ADMIN, DEMO_PASSWORD, DEMO_USERS
from rdm_site.roles import Role
from releases.choices import ReleaseType, Risk
from releases.models import (
    ChangeTemplate,
    ReleasePolicy,
)


def users_generate(year: Year) -> None:
    """The demo's users (same names, roles and password), then ``users_per_role`` more for every role.

    Written in bulk, so no audit event is recorded for them: the audit trail is the generated year alone.
    """
    groups = {group.name: group for group in Group.objects.filter(name__in=Role.values)}
    password = make_password(DEMO_PASSWORD)  # hashed once: every generated user signs in with it
    users, memberships = [], []
    for username, full_name, roles in DEMO_USERS:
        first_name, _, last_name = full_name.partition(" ")
        users.append(
            User(
                username=username,
                password=password,
                is_staff=True,
                first_name=first_name,
                last_name=last_name,
                email=f"{username}@rdm.example",
            )
        )
        memberships += [(username, groups[role.value]) for role in roles]
    users.append(
        User(
            username=DEMO_ADMIN,
            password=password,
            is_staff=True,
            is_superuser=True,
            first_name="Ada",
            email=f"{DEMO_ADMIN}@rdm.example",
        )
    )
    for role in Role:
        for n in range(1, year.sizes.users_per_role + 1):
            username = f"{GENERATED_PREFIX}.{slugify(role.value).replace('-', '')}.{n:03}"
            users.append(
                User(
                    username=username,
                    password=password,
                    is_staff=True,
                    first_name=role.label,
                    last_name=f"{n:03}",
                    email=f"{username}@rdm.example",
                )
            )
            memberships.append((username, groups[role.value]))
    ids = {user.username: user.pk for user in User.objects.bulk_create(users)}
    through = User.groups.through
    through.objects.bulk_create(through(user_id=ids[username], group_id=group.pk) for username, group in memberships)
    year.role_users = {
        role: list(User.objects.filter(groups__name=role.value).order_by("pk").values_list("pk", flat=True))
        for role in Role
    }
    year.usernames = dict(User.objects.values_list("pk", "username"))
    year.report(f"  users: {User.objects.count()} (every generated one signs in with the demo password)")


def places_generate(year: Year) -> None:
    year.environments = [
        Environment.objects.create(name=name, slug=name, tier=tier, promotion_order=order).pk
        for order, (name, tier) in enumerate(ENVIRONMENTS, start=1)
    ]
    year.production = year.environments[-1]
    owners = year.role_users[Role.SERVICE_OWNER]
    criticality = weighted(
        year.rng, {Criticality.LOW: 2, Criticality.MEDIUM: 5, Criticality.HIGH: 2, Criticality.CRITICAL: 1}
    )
    services = []
    for i in range(year.sizes.services):
        name = f"{DOMAINS[i % len(DOMAINS)]} {FUNCTIONS[(i // len(DOMAINS)) % len(FUNCTIONS)]}"
        if i >= len(DOMAINS) * len(FUNCTIONS):
            name += f" {i // (len(DOMAINS) * len(FUNCTIONS)) + 1}"
        services.append(
            Service(
                name=name,
                slug=slugify(name),
                owner_id=owners[i % len(owners)],
                criticality=criticality(),
                description=f"The {name} business service.",
            )
        )
    year.services = [service.pk for service in Service.objects.bulk_create(services)]
    year.service_names = {service.pk: service.name for service in services}
    stakeholders = Service.stakeholders.through
    viewers = year.role_users[Role.VIEWER]
    stakeholders.objects.bulk_create(
        stakeholders(service_id=pk, user_id=viewers[(n + k) % len(viewers)])
        for n, pk in enumerate(year.services)
        for k in range(2)
    )
    policies = [
        ReleasePolicy(
            name=f"{kind.label} release",
            release_type=kind,
            approvals_required=1,
            lead_time_days=0 if kind == ReleaseType.EMERGENCY else 3,
        )
        for kind in ReleaseType
    ]
    year.policies = {policy.release_type: policy.pk for policy in ReleasePolicy.objects.bulk_create(policies)}
    managers = year.role_users[Role.RELEASE_MANAGER]
    templates = ChangeTemplate.objects.bulk_create(
        ChangeTemplate(
            name=f"Routine deployment of {year.service_names[pk]}",
            description="Pre-approved.",
            risk=Risk.LOW,
            created_by_id=managers[0],
            approved_by_id=managers[-1],
            approved_at=year.start,
        )
        for pk in year.services
    )
    through = ChangeTemplate.services.through
    through.objects.bulk_create(
        through(changetemplate_id=template.pk, service_id=pk)
        for template, pk in zip(templates, year.services, strict=False)
    )
    year.templates = {pk: template.pk for template, pk in zip(templates, year.services, strict=False)}
    processes = DeploymentProcess.objects.bulk_create(
        DeploymentProcess(service_id=pk, name="Standard rollout", description="Fetch, install, verify.")
        for pk in year.services
    )
    year.processes = {process.service_id: process.pk for process in processes}
    StepTemplate.objects.bulk_create(
        StepTemplate(process_id=process.pk, position=position, name=name, executor="simulator")
        for process in processes
        for position, name in enumerate(STEP_NAMES[:4])
    )
    year.report(f"  environments {len(year.environments)}, services {len(year.services)}, policies, templates")
