"""The CMDB: a hub with a large downstream tree, stacks of CIs per service and environment, and targets."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta

from django.utils.text import slugify

from bench.scale_data.base import Copier, Year
from bench.scale_data.tables import CI_LAYOUT, RELATIONSHIP_KINDS, STACK_SIZE
from cmdb.choices import CiState, CiType, RelationshipKind
from cmdb.models import ConfigurationItem, Relationship
from deployments.models import (
    Target,
)
from rdm_site.roles import Role


def cmdb_generate(year: Year, copier: Copier) -> None:
    """A hub (the core network) with exactly ``hub_downstream`` CIs downstream, then stacks of CIs of one
    service in one environment, linked among themselves (so impact stays within a stack)."""
    sizes, rng = year.sizes, year.rng
    owners = year.role_users[Role.DEPLOYMENT_MANAGER]
    hub_tree = sizes.hub_downstream + 1
    first_level = max(1, math.isqrt(sizes.hub_downstream))
    rows = []
    moment = year.start - timedelta(days=30)
    for ci in range(1, sizes.cis + 1):
        if ci <= hub_tree:
            # live, so that the impact analysis walks the whole tree; the leaves serve every service
            environment, state = year.production, CiState.LIVE
            service = year.services[ci % len(year.services)] if ci > first_level + 1 else None
            ci_type = CiType.NETWORK if ci == 1 else CiType.SERVER if ci <= first_level + 1 else CiType.APPLICATION
            name = "core-network" if ci == 1 else f"edge-{ci:06d}"
        else:
            stack = (ci - hub_tree - 1) // STACK_SIZE
            local = (ci - hub_tree - 1) % STACK_SIZE
            service = year.services[stack % len(year.services)]
            environment = year.environments[(stack // len(year.services)) % len(year.environments)]
            year.stacks.setdefault((service, environment), []).append(ci)
            ci_type = (
                CI_LAYOUT[local]
                if local < len(CI_LAYOUT)
                else (CiType.SERVER if local % 3 == 0 else CiType.APPLICATION)
            )
            name = f"{slugify(year.service_names[service])}-{ci_type.replace('_', '-')}-{ci:06d}"
            state = CiState.LIVE if rng.random() < 0.9 else rng.choice(list(CiState))
        created = moment + timedelta(seconds=ci)
        rows.append(
            (
                ci,
                name,
                ci_type,
                state,
                f"{rng.randint(1, 9)}.{rng.randint(0, 30)}",
                "{}",
                owners[ci % len(owners)],
                environment,
                service,
                created,
                created,
            )
        )
    copier.copy(
        ConfigurationItem,
        [
            "id",
            "name",
            "ci_type",
            "state",
            "version",
            "attributes",
            "owner_id",
            "environment_id",
            "service_id",
            "created",
            "updated",
        ],
        rows,
    )
    copier.copy(Relationship, ["id", "source_id", "target_id", "kind", "created"], _relationships(year, hub_tree))
    targets, n = [], 0
    for key, cis in year.stacks.items():
        for ci in cis[len(CI_LAYOUT) : len(CI_LAYOUT) + 4]:  # the first application servers of each stack
            n += 1
            targets.append((n, ci, f"ring-{n % 3}", "", True, year.start))
            year.targets.setdefault(key, []).append(n)
    copier.copy(Target, ["id", "ci_id", "ring", "group", "enabled", "created"], targets)


def _relationships(year: Year, hub_tree: int) -> Iterable[tuple]:
    sizes, rng = year.sizes, year.rng
    first_level = max(1, math.isqrt(sizes.hub_downstream))
    at = year.start
    n = 0
    for ci in range(2, hub_tree + 1):
        n += 1
        if ci <= first_level + 1:
            yield (n, ci, 1, RelationshipKind.DEPENDS_ON, at)
        else:
            yield (n, ci, 2 + (ci - first_level - 2) % first_level, RelationshipKind.RUNS_ON, at)
    remaining = sizes.relationships - n
    stacked = sizes.cis - hub_tree
    carry = 0
    for ci in range(hub_tree + 1, sizes.cis + 1):
        local = (ci - hub_tree - 1) % STACK_SIZE
        left = sizes.cis - ci + 1
        want = remaining // left + (rng.random() < (remaining % left) / left) + carry if stacked else 0
        take = min(want, local, remaining)  # distinct earlier CIs of the same stack: a DAG, no duplicates
        carry = want - take
        for offset in rng.sample(range(1, local + 1), take):
            n += 1
            remaining -= 1
            yield (n, ci, ci - offset, rng.choice(RELATIONSHIP_KINDS), at)
