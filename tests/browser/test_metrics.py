"""The DORA metrics page in Chromium: its four charts drawn by chart.js from the series of ``dora_world``, the
filters, and the CSV download."""

from playwright.sync_api import expect

from tests.browser.conftest import axe_violations, shot, sign_in
from tests.deployments.dora_world import dora_world

CHARTS = ("chart-deployments", "chart-change-failure-rate", "chart-lead-time", "chart-time-to-restore")

# The last chart the page draws is there (chart.js itself loads after the page, deferred).
CHARTS_DRAWN = "() => typeof Chart === 'function' && Chart.getChart('chart-time-to-restore') !== undefined"

# What a canvas shows: its chart.js instance (or none), its drawn size, and whether any pixel is painted.
CANVAS_STATE = """id => {
  const canvas = document.getElementById(id);
  const chart = Chart.getChart(canvas);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return {
    chart: chart ? chart.config.type : null,
    width: canvas.width,
    height: canvas.height,
    painted: pixels.some((value, index) => index % 4 === 3 && value > 0),
    datasets: chart ? chart.data.datasets.map(dataset => dataset.data) : [],
  };
}"""


def test_the_metrics_page_draws_its_charts(page):
    world = dora_world()
    sign_in(page, "vera.viewer")

    page.goto("/reports/dora/?from=2025-03-01&to=2025-03-31")

    expect(page.get_by_role("heading", name="DORA metrics")).to_be_visible()
    expect(page.locator('[data-key="change_failure_rate"] [data-value]')).to_have_text("60 %")
    page.wait_for_function(CHARTS_DRAWN)
    states = {chart: page.evaluate(CANVAS_STATE, chart) for chart in CHARTS}
    for chart, state in states.items():
        assert state["chart"] is not None, chart
        assert state["width"] > 100, chart
        assert state["height"] > 100, chart
        assert state["painted"], chart
    # weeks from 24 February: succeeded 0 2 1 0 1 0 and failed 0 2 1 1 2 0 (test_metrics works them out)
    assert states["chart-deployments"]["datasets"] == [[0, 2, 1, 0, 1, 0], [0, 2, 1, 1, 2, 0]]
    assert states["chart-time-to-restore"]["datasets"] == [[None, None, 2, None, 12, None]]
    assert axe_violations(page) == []
    shot(page, "dora-metrics")
    page.set_viewport_size({"width": 768, "height": 1000})
    shot(page, "dora-metrics-tablet")
    page.set_viewport_size({"width": 1366, "height": 900})

    page.get_by_label("Service", exact=True).select_option(label="shop")
    page.get_by_label("Per", exact=True).select_option(label="Month")
    page.get_by_role("button", name="Show").click()
    expect(page.locator('[data-key="deployment_frequency"]')).to_contain_text("6 production deployment(s)")
    page.wait_for_function(CHARTS_DRAWN)
    assert page.evaluate(CANVAS_STATE, "chart-deployments")["datasets"] == [[3], [3]]  # D1 H1 D3 H2 D4 D4c

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"rdm-dora-{world.shop.name}-production-2025-03-01-2025-03-31.csv"
    lines = open(download.value.path()).read().splitlines()  # noqa: SIM115 - Playwright owns the file
    assert lines[0] == "from,to,figure,value,unit,level,trend"
    assert "2025-03-01,2025-03-31,change_failure_rate,0.5,ratio,low,same" in lines
