/* The live rollout page. It follows the deployment's event stream (Server-Sent Events): each event updates
 * its grid cell, wave or state at once, is added to the events list, and makes the page re-read its
 * server-rendered parts (controls and those withheld, guards, summary, interventions, grid, timeline). An event
 * is applied once: those at or below the last number seen are ignored, so a replay after a reconnection shows
 * nothing twice. */
(function () {
  "use strict";
  const root = document.querySelector("[data-rollout]");
  if (!root) return;
  const status = document.getElementById("rollout-connection");
  const events = document.getElementById("rollout-events");
  const PARTS = [
    "rollout-controls",
    "rollout-withheld",
    "rollout-start",
    "rollout-summary",
    "rollout-interventions",
    "rollout-grid",
    "rollout-timeline",
  ];
  let lastSeq = Number(root.dataset.lastSeq || 0);
  let retryDelay = 1000;
  let refreshTimer = null;
  let refreshing = false;
  let refreshAgain = false;

  function showStatus(text, classes) {
    status.textContent = text;
    status.className = "badge " + classes;
  }

  function stateText(state) {
    const text = state.replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function setState(element, state) {
    element.className = element.className.replace(/\brdm-state-\S+/g, "").trim() + " rdm-state-" + state;
  }

  function subject(message) {
    if (message.step) {
      const step = root.querySelector('[data-step="' + message.step + '"]');
      return step ? step.dataset.label : null; // a step planned after the page was drawn (a rollback step)
    }
    if (message.wave) {
      const title = root.querySelector('[data-wave="' + message.wave + '"] .card-title');
      return title ? title.textContent.trim() : "wave #" + message.wave;
    }
    return "deployment";
  }

  function addEvent(message) {
    const item = document.createElement("li");
    item.className = "list-group-item py-2";
    item.dataset.seq = message.seq;
    const meta = document.createElement("span");
    meta.className = "text-secondary";
    meta.textContent = "#" + message.seq + " " + new Date(message.at).toISOString().slice(11, 19);
    const what = document.createElement("strong");
    what.textContent = subject(message) || "step #" + message.step;
    if (subject(message) === null) what.dataset.unnamedStep = message.step;
    item.append(meta, " ", what, " → " + message.state.replace(/_/g, " "));
    if (message.message) {
      const note = document.createElement("span");
      note.className = "text-secondary";
      note.textContent = " — " + message.message;
      item.append(note);
    }
    events.prepend(item);
  }

  function apply(message) {
    if (message.seq <= lastSeq) return;
    lastSeq = message.seq;
    addEvent(message);
    if (message.type === "step") {
      const step = root.querySelector('[data-step="' + message.step + '"]');
      if (step) {
        setState(step, message.state);
        step.querySelector(".rdm-step-state").textContent = stateText(message.state);
      }
    } else if (message.type === "wave") {
      const badge = root.querySelector('[data-wave-state="' + message.wave + '"]');
      if (badge) {
        setState(badge, message.state);
        badge.textContent = stateText(message.state);
      }
    } else {
      const badge = root.querySelector("[data-rollout-state] .badge");
      if (badge) badge.textContent = stateText(message.state);
    }
    scheduleRefresh();
  }

  function nameSteps() {
    for (const what of events.querySelectorAll("[data-unnamed-step]")) {
      const step = root.querySelector('[data-step="' + what.dataset.unnamedStep + '"]');
      if (!step) continue;
      what.textContent = step.dataset.label;
      delete what.dataset.unnamedStep;
    }
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 250);
  }

  function busy(id) {
    // Not while a confirmation is open or an answer is being written: the page catches up afterwards.
    const part = document.getElementById(id);
    if (id === "rollout-controls" && document.body.classList.contains("modal-open")) return true;
    return part !== null && part.contains(document.activeElement) && document.activeElement.matches("input, textarea");
  }

  function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    fetch(root.dataset.live, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => {
        if (html === null) return;
        const fresh = new DOMParser().parseFromString(html, "text/html");
        for (const id of PARTS) {
          const current = document.getElementById(id);
          const replacement = fresh.getElementById(id);
          if (!current || !replacement) continue;
          if (busy(id)) {
            refreshAgain = true;
            continue;
          }
          // forms rendered for the live request go back to this page after posting
          for (const next of replacement.querySelectorAll('input[name="next"]')) next.value = window.location.pathname;
          current.replaceWith(replacement);
          if (window.htmx) window.htmx.process(replacement);
        }
        nameSteps();
      })
      .catch(() => { refreshAgain = true; })
      .finally(() => {
        refreshing = false;
        if (refreshAgain) {
          refreshAgain = false;
          setTimeout(refresh, 1000);
        }
      });
  }

  function connect() {
    const source = new EventSource(root.dataset.stream + "?after=" + lastSeq);
    root.rdmStream = source;
    source.onopen = function () {
      retryDelay = 1000;
      showStatus("live", "rdm-live");
    };
    source.onerror = function () {
      showStatus("reconnecting…", "rdm-reconnecting");
      if (source.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
      source.close();
      scheduleRefresh(); // meanwhile the page is re-read, so it moves even while the stream is away
      setTimeout(connect, retryDelay); // it gave up: start again from the last event seen
      retryDelay = Math.min(retryDelay * 2, 15000);
    };
    for (const type of ["deployment", "wave", "step"]) {
      source.addEventListener(type, (event) => apply(JSON.parse(event.data)));
    }
    source.addEventListener("end", function () {
      source.close();
      showStatus("finished: this page is its record", "rdm-finished");
      scheduleRefresh();
    });
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const parts = hours ? [hours + " h", minutes + " min"] : minutes ? [minutes + " min", (seconds % 60) + " s"] : [seconds + " s"];
    return parts.join(" ");
  }

  function tick() {
    const now = Date.now();
    for (const element of document.querySelectorAll("[data-countdown]")) {
      element.textContent = duration((Date.parse(element.dataset.countdown) - now) / 1000);
    }
    for (const element of document.querySelectorAll("[data-elapsed-from]")) {
      if (!element.dataset.elapsedFrom) continue;
      const end = element.dataset.elapsedTo ? Date.parse(element.dataset.elapsedTo) : now;
      element.textContent = duration((end - Date.parse(element.dataset.elapsedFrom)) / 1000);
    }
  }

  document.body.addEventListener("htmx:afterSwap", function () {
    const follow = document.getElementById("step-log-follow");
    const logs = document.getElementById("step-logs");
    if (follow && follow.checked && logs) logs.scrollTop = logs.scrollHeight;
  });
  document.body.addEventListener("hidden.bs.modal", scheduleRefresh);

  setInterval(tick, 1000);
  if (root.dataset.finished !== "true" && window.EventSource) connect();
})();
