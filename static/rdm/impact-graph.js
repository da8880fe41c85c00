/* The impact graph of a CI (cmdb/configurationitem_impact.html): the CIs hurt when it breaks, drawn with
 * cytoscape.js from the page's "impact-data" JSON, the broken CI highlighted; clicking a CI opens its page.
 * The table under the graph says the same, so the page reads without this script.
 */
(function () {
  "use strict";

  var COLOURS = { root: "#b02a37", near: "#d9480f", far: "#1d5fbf" };

  function elements(data) {
    var nodes = data.nodes.map(function (node) {
      var role = node.depth === 0 ? "root" : node.depth === 1 ? "near" : "far";
      return {
        group: "nodes",
        data: { id: node.id, label: node.name + "\n" + node.type, url: node.url, colour: COLOURS[role] },
        classes: role,
      };
    });
    var edges = data.edges.map(function (edge) {
      return { group: "edges", data: { id: "r" + edge.id, source: edge.source, target: edge.target, label: edge.kind } };
    });
    return nodes.concat(edges);
  }

  function draw() {
    var container = document.getElementById("impact-graph");
    var source = document.getElementById("impact-data");
    if (!container || !source || typeof cytoscape !== "function") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var graph = cytoscape({
      container: container,
      elements: elements(data),
      userZoomingEnabled: false,
      boxSelectionEnabled: false,
      minZoom: 0.3,
      maxZoom: 1.6,
      layout: {
        name: "breadthfirst",
        roots: [data.nodes[0].id],
        directed: false,
        spacingFactor: 1.1,
        padding: 24,
        fit: true,
      },
      style: [
        {
          selector: "node",
          style: {
            "background-color": "data(colour)",
            label: "data(label)",
            "text-wrap": "wrap",
            "text-valign": "bottom",
            "text-margin-y": 4,
            "font-size": 11,
            color: "#1e293b",
            "text-background-color": "#ffffff",
            "text-background-opacity": 0.85,
            "text-background-padding": 2,
            width: 22,
            height: 22,
          },
        },
        {
          selector: "node.root",
          style: {
            width: 34,
            height: 34,
            "border-width": 4,
            "border-color": "#5c0d14",
            "font-weight": "bold",
            "text-valign": "top",
            "text-margin-y": -4,
          },
        },
        {
          selector: "edge",
          style: {
            width: 1.5,
            "line-color": "#94a3b8",
            "target-arrow-color": "#94a3b8",
            "target-arrow-shape": "triangle",
            "curve-style": "bezier",
            label: "data(label)",
            "font-size": 9,
            color: "#475569",
            "text-rotation": "autorotate",
            "text-background-color": "#f8fafc",
            "text-background-opacity": 1,
          },
        },
      ],
    });
    graph.on("tap", "node", function (event) {
      window.location.assign(event.target.data("url"));
    });
    graph.on("mouseover", "node", function () {
      container.style.cursor = "pointer";
    });
    graph.on("mouseout", "node", function () {
      container.style.cursor = "";
    });
    window.addEventListener("resize", function () {
      graph.resize();
      graph.fit(undefined, 24);
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
