"""CMDB reads: impact analysis, what version is where, baseline comparison."""

import pytest

from cmdb import services
from cmdb.choices import CiState, CiType, RelationshipKind
from cmdb.models import ConfigurationItem, Relationship
from cmdb.selectors import baseline_diff, ci_impact, ci_upstream, version_matrix
from tests.cmdb.factories import ConfigurationItemFactory, EnvironmentFactory, RelationshipFactory, ServiceFactory

pytestmark = pytest.mark.django_db

DEPENDS_ON, RUNS_ON, PART_OF, CONNECTS_TO = RelationshipKind


def relate(source, kind, target):
    RelationshipFactory(source=source, kind=kind, target=target)


def depths(impact) -> dict[str, int]:
    return {hurt.ci.name: hurt.depth for hurt in impact.cis}


# --- impact -----------------------------------------------------------------------------------


def test_impact_follows_dependencies_through_a_cycle_and_keeps_the_shortest_depth():
    # given web → app → db, plus a shortcut web → db, and db depending back on web (a cycle)
    db, app, web = (ConfigurationItemFactory(name=name) for name in ("db", "app", "web"))
    relate(app, DEPENDS_ON, db)
    relate(web, DEPENDS_ON, app)
    relate(web, RUNS_ON, db)
    relate(db, DEPENDS_ON, web)
    # when the database breaks
    impact = ci_impact(db)
    # then the walk ends, each CI is listed once at its shortest distance, and db itself is not listed
    assert depths(impact) == {"app": 1, "web": 1}


def test_impact_depth_counts_hops_along_a_chain_and_stops_at_max_depth():
    chain = [ConfigurationItemFactory(name=f"ci{n}") for n in range(5)]
    for upper, lower in zip(chain[1:], chain, strict=False):
        relate(upper, DEPENDS_ON, lower)
    relate(chain[0], DEPENDS_ON, chain[-1])  # close the loop
    assert depths(ci_impact(chain[0])) == {"ci1": 1, "ci2": 2, "ci3": 3, "ci4": 4}
    assert depths(ci_impact(chain[0], max_depth=2)) == {"ci1": 1, "ci2": 2}


def test_a_broken_member_degrades_its_cluster_but_a_cluster_does_not_break_its_members():
    # given a node that is part of a cluster, and an application running on the cluster
    node, cluster, application = (ConfigurationItemFactory(name=name) for name in ("node", "cluster", "application"))
    relate(node, PART_OF, cluster)
    relate(application, RUNS_ON, cluster)
    # then a broken node reaches the application through its cluster, and a broken cluster spares the node
    assert depths(ci_impact(node)) == {"cluster": 1, "application": 2}
    assert depths(ci_impact(cluster)) == {"application": 1}


def test_a_connection_carries_impact_both_ways():
    balancer, network = ConfigurationItemFactory(name="balancer"), ConfigurationItemFactory(name="network")
    relate(balancer, CONNECTS_TO, network)
    assert depths(ci_impact(balancer)) == {"network": 1}
    assert depths(ci_impact(network)) == {"balancer": 1}


def test_retired_cis_neither_suffer_nor_pass_on_impact(administrator):
    db, old_app, beyond = (ConfigurationItemFactory(name=name) for name in ("db", "old-app", "beyond"))
    relate(old_app, DEPENDS_ON, db)
    relate(beyond, DEPENDS_ON, old_app)
    services.ci_transition(
        ci=old_app, transition="retire", actor=administrator, reason="decommissioned", override_dependents=True
    )
    assert depths(ci_impact(db)) == {}


def test_upstream_is_impact_read_the_other_way_round(administrator):
    # given a graph with every kind of relationship, a cycle, a connection and a retired CI in the middle
    db, app, web, node, cluster, balancer, old, beyond = (
        ConfigurationItemFactory(name=name)
        for name in ("db", "app", "web", "node", "cluster", "balancer", "old", "beyond")
    )
    for source, kind, target in [
        (app, DEPENDS_ON, db),
        (web, DEPENDS_ON, app),
        (db, DEPENDS_ON, web),
        (node, PART_OF, cluster),
        (app, RUNS_ON, cluster),
        (balancer, CONNECTS_TO, web),
        (old, DEPENDS_ON, db),
        (beyond, DEPENDS_ON, old),
    ]:
        relate(source, kind, target)
    services.ci_transition(
        ci=old, transition="retire", actor=administrator, reason="decommissioned", override_dependents=True
    )
    cis = [db, app, web, node, cluster, balancer, old, beyond]
    # then the CIs whose failure reaches X, with their hops, are exactly those whose impact lists X at that depth
    for max_depth in (10, 2):
        downstream = {ci.pk: {hurt.ci.pk: hurt.depth for hurt in ci_impact(ci, max_depth).cis} for ci in cis}
        for hurt in cis:
            expected = {broken: reach[hurt.pk] for broken, reach in downstream.items() if hurt.pk in reach}
            assert ci_upstream(hurt, max_depth) == expected, hurt.name
    assert ci_upstream(beyond) == {old.pk: 1}  # nothing passes through the retired CI
    assert set(ci_upstream(app)) == {db.pk, web.pk, app.pk, node.pk, cluster.pk, balancer.pk} - {app.pk}


def test_impact_names_the_services_hurt_including_the_broken_cis_own():
    # given Payments' database, used by a Web Shop CI directly and by a Search CI through it
    payments, shop, search = (ServiceFactory(name=name) for name in ("Payments", "Web Shop", "Search"))
    db = ConfigurationItemFactory(name="orders-db", service=payments)
    shop_app = ConfigurationItemFactory(service=shop)
    search_app = ConfigurationItemFactory(service=search)
    relate(shop_app, DEPENDS_ON, db)
    relate(search_app, DEPENDS_ON, shop_app)
    # when the database breaks / then all three services are hurt, nearest first
    impact = ci_impact(db)
    assert [(hurt.service.name, hurt.depth) for hurt in impact.services] == [
        ("Payments", 0),
        ("Web Shop", 1),
        ("Search", 2),
    ]


def _tree_graph(size: int) -> ConfigurationItem:
    """``size`` CIs in one environment; each depends on the one at (i - 1) // 4, and the root on the last."""
    environment, service = EnvironmentFactory(), ServiceFactory()
    cis = ConfigurationItem.objects.bulk_create(
        ConfigurationItem(
            name=f"node-{n}", environment=environment, service=service, ci_type=CiType.SERVER, state=CiState.LIVE
        )
        for n in range(size)
    )
    edges = [Relationship(source=cis[n], target=cis[(n - 1) // 4], kind=DEPENDS_ON) for n in range(1, size)]
    edges.append(Relationship(source=cis[0], target=cis[-1], kind=DEPENDS_ON))
    Relationship.objects.bulk_create(edges)
    return cis[0]


def test_impact_costs_the_same_queries_on_ten_thousand_cis_as_on_five(django_assert_num_queries):
    # given a small tree and a tree of 10,000 CIs, each with a cycle back to its root
    small, large = _tree_graph(5), _tree_graph(10_000)
    # when each root breaks / then the query count is the same, and every other CI is found
    with django_assert_num_queries(3):
        small_impact = ci_impact(small)
    with django_assert_num_queries(3):
        large_impact = ci_impact(large)
    assert len(small_impact.cis) == 4
    assert len(large_impact.cis) == 9_999
    assert max(hurt.depth for hurt in large_impact.cis) == 7  # levels of 1, 4, 16... CIs: 10,000 fill levels 0 to 7


# --- what version is where ----------------------------------------------------------------------


def test_version_matrix_shows_each_services_application_versions_per_environment(django_assert_num_queries):
    # given two environments and three services, one without CIs
    staging = EnvironmentFactory(name="staging", promotion_order=3)
    production = EnvironmentFactory(name="production", promotion_order=4)
    shop, payments, _idle = (ServiceFactory(name=name) for name in ("Web Shop", "Payments", "Zzz Idle"))
    ConfigurationItemFactory(name="web-shop", service=shop, environment=staging, version="5.1")
    ConfigurationItemFactory(name="web-shop", service=shop, environment=production, version="5.0")
    ConfigurationItemFactory(name="web-shop-admin", service=shop, environment=production, version="5.0")
    ConfigurationItemFactory(name="payments-api", service=payments, environment=production, version="2.3")
    # and CIs that are not shown: a retired application, a database
    ConfigurationItemFactory(name="old-shop", service=shop, environment=staging, version="4.0", state=CiState.RETIRED)
    ConfigurationItemFactory(name="db", service=payments, environment=staging, version="17", ci_type=CiType.DATABASE)
    # when the matrix is read / then in three queries
    with django_assert_num_queries(3):
        matrix = version_matrix()
    # then rows are services, columns environments in promotion order, cells the versions there
    assert [env.name for env in matrix.environments] == ["staging", "production"]
    table = {row.service.name: [cell.versions for cell in row.cells] for row in matrix.rows}
    assert table == {"Payments": [[], ["2.3"]], "Web Shop": [["5.1"], ["5.0"]], "Zzz Idle": [[], []]}
    shop_in_production = matrix.rows[1].cells[1]
    names = dict(ConfigurationItem.objects.values_list("pk", "name"))
    assert [names[pk] for pk in shop_in_production.ci_ids] == ["web-shop", "web-shop-admin"]


def test_a_page_of_the_version_matrix_holds_limit_services_by_name_and_counts_them_all(django_assert_num_queries):
    production = EnvironmentFactory(name="production")
    services = [ServiceFactory(name=f"Service {n:02}") for n in range(7)]
    for service in services:
        ConfigurationItemFactory(name=f"{service.slug}-app", service=service, environment=production, version="1.0")

    with django_assert_num_queries(4):  # the count is the fourth
        page = version_matrix(limit=3, offset=3)

    assert [row.service for row in page.rows] == services[3:6]
    assert (page.service_count, page.limit, page.offset) == (7, 3, 3)
    assert [row.cells[0].versions for row in page.rows] == [["1.0"]] * 3
    chosen = version_matrix([services[1].pk, services[5].pk], limit=1, offset=1)
    assert ([row.service for row in chosen.rows], chosen.service_count) == ([services[5]], 2)


# --- baseline comparison ----------------------------------------------------------------------


def test_baseline_diff_lists_added_removed_and_changed_cis():
    # given a baseline of an environment
    environment = EnvironmentFactory()
    api = ConfigurationItemFactory(
        name="api", environment=environment, version="1.0", attributes={"port": 80, "tls": 0}
    )
    steady = ConfigurationItemFactory(name="steady", environment=environment)
    doomed = ConfigurationItemFactory(name="doomed", environment=environment)
    before = services.baseline_take(name="before", environment=environment, actor=None)
    # when a release changes the API, adds a CI and removes another
    services.ci_update(ci=api, actor=None, data={"version": "1.1", "attributes": {"port": 443, "replicas": 2}})
    services.ci_transition(ci=api, transition="start_maintenance", actor=None)
    added = ConfigurationItemFactory(name="cache", environment=environment)
    doomed_id = doomed.pk
    doomed.delete()
    after = services.baseline_take(name="after", environment=environment, actor=None)
    # then the diff says exactly that, and the steady CI is not mentioned
    diff = baseline_diff(before, after)
    assert [item.ci_id for item in diff.added] == [added.pk]
    assert [(item.ci_id, item.ci_name) for item in diff.removed] == [(doomed_id, "doomed")]
    [change] = diff.changed
    assert (change.ci_id, change.ci_name) == (api.pk, "api")
    assert change.changes == {
        "state": (CiState.LIVE, CiState.MAINTENANCE),
        "version": ("1.0", "1.1"),
        "attributes.port": (80, 443),
        "attributes.replicas": (None, 2),
        "attributes.tls": (0, None),
    }
    assert steady.pk not in {item.ci_id for item in diff.added + diff.removed}
