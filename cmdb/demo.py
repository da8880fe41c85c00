"""Demo CMDB: four environments, five services and their CIs, wired together, and an "initial" baseline.

Loading twice changes nothing. Needs the demo users (``rdm_site.demo.demo_users_load``) first.
The rows are seed data, written directly rather than through the services: nobody acted.
"""

from django.contrib.auth.models import User
from django.utils.text import slugify

from cmdb.choices import CiState, CiType, Criticality, EnvironmentTier, RelationshipKind
from cmdb.models import Baseline, ConfigurationItem, Environment, Relationship, Service
from cmdb.services import baseline_take

ENVIRONMENTS = [  # name, tier, promotion order
    ("dev", EnvironmentTier.DEVELOPMENT, 1),
    ("test", EnvironmentTier.TEST, 2),
    ("staging", EnvironmentTier.STAGING, 3),
    ("production", EnvironmentTier.PRODUCTION, 4),
]

SERVICES = [  # name, owner, criticality, stakeholders, description
    ("Payments", "oscar.owner", Criticality.CRITICAL, ["rita.release", "dan.deploy"], "Card and invoice payments."),
    ("Web Shop", "sophie.owner", Criticality.HIGH, ["rita.release", "oscar.owner"], "The public online shop."),
    ("Customer Portal", "sophie.owner", Criticality.MEDIUM, ["rita.release"], "Orders, invoices and returns."),
    ("Search", "oscar.owner", Criticality.MEDIUM, ["sophie.owner"], "Product search for the shop and portal."),
    ("Notifications", "oscar.owner", Criticality.LOW, ["dan.deploy"], "E-mail and SMS to customers."),
]

APPLICATIONS = [  # name, service, version in dev, test, staging, production
    ("payments-api", "Payments", ("2.5.0-rc1", "2.4.0", "2.4.0", "2.3.2")),
    ("web-shop", "Web Shop", ("5.1.0", "5.0.2", "5.0.2", "5.0.1")),
    ("customer-portal", "Customer Portal", ("1.9.0", "1.8.0", "1.8.0", "1.8.0")),
    ("search-api", "Search", ("3.0.0-beta", "2.7.1", "2.7.1", "2.7.0")),
    ("notifications-worker", "Notifications", ("0.9.0", "0.8.4", "0.8.4", "0.8.3")),
]

INFRASTRUCTURE = [  # name, type, service, version, attributes
    ("orders-db", CiType.DATABASE, "Payments", "PostgreSQL 17", {"engine": "postgresql"}),
    ("db-server-1", CiType.SERVER, None, "", {"cpus": 8, "memory_gb": 64}),
    ("app-cluster", CiType.CLUSTER, None, "Kubernetes 1.33", {"provider": "on-premises"}),
    ("edge-lb", CiType.LOAD_BALANCER, None, "HAProxy 3.2", {"listeners": [80, 443]}),
    ("search-index", CiType.STORAGE, "Search", "OpenSearch 2.19", {"shards": 3}),
]
NODES_PER_ENVIRONMENT = {"dev": 1, "test": 1, "staging": 2, "production": 3}
INFRASTRUCTURE_OWNER = "dan.deploy"

RELATIONSHIPS = [  # source, kind, target — within each environment
    *((name, RelationshipKind.RUNS_ON, "app-cluster") for name, _, _ in APPLICATIONS),
    ("orders-db", RelationshipKind.RUNS_ON, "db-server-1"),
    ("payments-api", RelationshipKind.DEPENDS_ON, "orders-db"),
    ("web-shop", RelationshipKind.DEPENDS_ON, "orders-db"),
    ("customer-portal", RelationshipKind.DEPENDS_ON, "orders-db"),
    ("notifications-worker", RelationshipKind.DEPENDS_ON, "orders-db"),
    ("web-shop", RelationshipKind.DEPENDS_ON, "payments-api"),
    ("web-shop", RelationshipKind.DEPENDS_ON, "search-api"),
    ("customer-portal", RelationshipKind.DEPENDS_ON, "search-api"),
    ("search-api", RelationshipKind.DEPENDS_ON, "search-index"),
    ("web-shop", RelationshipKind.DEPENDS_ON, "edge-lb"),
    ("customer-portal", RelationshipKind.DEPENDS_ON, "edge-lb"),
    ("edge-lb", RelationshipKind.CONNECTS_TO, "app-cluster"),
]

# Where the demo CIs stand in their lifecycle: applications are being built in dev, and test's
# search index is under maintenance; everything else runs.
BUILDING_APPLICATIONS_IN = "dev"
UNDER_MAINTENANCE = ("search-index", "test")


def _ci(name: str, environment: Environment, ci_type: str, state: str, **fields) -> ConfigurationItem:
    # The state is only set when the CI is created: later loads leave its lifecycle alone.
    ci, _ = ConfigurationItem.objects.update_or_create(
        name=name,
        environment=environment,
        defaults={"ci_type": ci_type, **fields},
        create_defaults={"ci_type": ci_type, "state": state, **fields},
    )
    return ci


def _environment_cis(environment: Environment, services: dict[str, Service], users: dict[str, User]) -> None:
    position = [name for name, _, _ in ENVIRONMENTS].index(environment.name)
    cis = {}
    for name, service, versions in APPLICATIONS:
        state = CiState.IN_BUILD if environment.name == BUILDING_APPLICATIONS_IN else CiState.LIVE
        owner = services[service].owner
        cis[name] = _ci(
            name,
            environment,
            CiType.APPLICATION,
            state,
            service=services[service],
            owner=owner,
            version=versions[position],
        )
    for name, ci_type, service, version, attributes in INFRASTRUCTURE:
        state = CiState.MAINTENANCE if (name, environment.name) == UNDER_MAINTENANCE else CiState.LIVE
        cis[name] = _ci(
            name,
            environment,
            ci_type,
            state,
            service=services.get(service),
            owner=users[INFRASTRUCTURE_OWNER],
            version=version,
            attributes=attributes,
        )
    for number in range(1, NODES_PER_ENVIRONMENT[environment.name] + 1):
        node = _ci(f"app-node-{number}", environment, CiType.SERVER, CiState.LIVE, owner=users[INFRASTRUCTURE_OWNER])
        Relationship.objects.get_or_create(source=node, target=cis["app-cluster"], kind=RelationshipKind.PART_OF)
    for source, kind, target in RELATIONSHIPS:
        Relationship.objects.get_or_create(source=cis[source], target=cis[target], kind=kind)


def demo_cmdb_load() -> None:
    usernames = {INFRASTRUCTURE_OWNER} | {user for _, owner, _, others, _ in SERVICES for user in [owner, *others]}
    users = {user.username: user for user in User.objects.filter(username__in=usernames)}
    services = {}
    for name, owner, criticality, stakeholders, description in SERVICES:
        services[name], _ = Service.objects.update_or_create(
            name=name,
            defaults={
                "slug": slugify(name),
                "owner": users[owner],
                "criticality": criticality,
                "description": description,
            },
        )
        services[name].stakeholders.set([users[username] for username in stakeholders])
    for name, tier, promotion_order in ENVIRONMENTS:
        environment, _ = Environment.objects.update_or_create(
            name=name, defaults={"slug": name, "tier": tier, "promotion_order": promotion_order}
        )
        _environment_cis(environment, services, users)
    if not Baseline.objects.filter(name="initial").exists():
        baseline_take(
            name="initial", actor=None, cis=ConfigurationItem.objects.all(), reason="The demo CMDB as first loaded."
        )
