/* The DORA metrics page (deployments/dora_report.html): one chart per key, drawn with chart.js from the page's
 * "dora-series" JSON (a list per line, a value per bucket). The table under the charts says the same, so the
 * page reads without this script.
 */
(function () {
  "use strict";

  var COLOURS = { blue: "#1d5fbf", red: "#b02a37", green: "#2f7d32", orange: "#c2410c", purple: "#6941c6" };

  function line(label, values, colour, dashed) {
    return {
      label: label,
      data: values,
      borderColor: colour,
      backgroundColor: colour,
      borderDash: dashed ? [6, 4] : [],
      spanGaps: false,
      tension: 0,
    };
  }

  function bars(label, values, colour) {
    return { label: label, data: values, backgroundColor: colour, stack: "deployments" };
  }

  function options(unit, stacked) {
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom" } },
      scales: {
        x: { stacked: stacked, offset: true },
        y: { stacked: stacked, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: unit } },
      },
    };
  }

  function draw(id, type, datasets, labels, unit) {
    var canvas = document.getElementById(id);
    if (canvas) {
      var config = { type: type, data: { labels: labels, datasets: datasets }, options: options(unit, type === "bar") };
      new Chart(canvas, config);
    }
  }

  function drawAll() {
    var source = document.getElementById("dora-series");
    if (!source || typeof Chart !== "function") {
      return;
    }
    var series = JSON.parse(source.textContent);
    var labels = series.labels;
    draw("chart-deployments", "bar", [
      bars("Succeeded", series.succeeded, COLOURS.green),
      bars("Failed or caused a failure", series.failed, COLOURS.red),
    ], labels, "deployments");
    draw("chart-change-failure-rate", "line", [line("Change failure rate", series.change_failure_rate, COLOURS.red)],
      labels, "%");
    draw("chart-lead-time", "line", [
      line("Median", series.lead_time_median, COLOURS.blue),
      line("90th percentile", series.lead_time_p90, COLOURS.purple, true),
    ], labels, "hours");
    draw("chart-time-to-restore", "line", [line("Median", series.time_to_restore_median, COLOURS.orange)],
      labels, "hours");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
