/* Lists of deployments (the deployments list, the dashboard): rollouts under way move live. A few are followed
 * on their event streams (browsers open six connections per site: the page keeps the rest); the others are
 * re-read every five seconds. On an event the row's state badge and progress bar are re-read from the server. */
(function () {
  "use strict";
  const MAX_STREAMS = 4;
  const POLL_MS = 5000;
  let streams = 0;

  function refresh(id, url) {
    return fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => {
        if (html === null) return true;
        const fresh = new DOMParser().parseFromString(html, "text/html").body;
        let streamed = false;
        for (const attribute of ["data-deployment-state", "data-deployment-progress"]) {
          const replacement = fresh.querySelector("[" + attribute + '="' + id + '"]');
          const current = document.querySelector("[" + attribute + '="' + id + '"]');
          if (replacement && current) current.replaceWith(replacement);
          if (replacement && replacement.hasAttribute("data-stream")) streamed = true;
        }
        return streamed;
      })
      .catch(() => true);
  }

  function follow(element) {
    const id = element.dataset.deploymentProgress;
    const url = element.dataset.refresh;
    if (streams < MAX_STREAMS && window.EventSource) {
      streams += 1;
      let timer = null;
      const soon = function () {
        clearTimeout(timer);
        timer = setTimeout(() => refresh(id, url), 300);
      };
      const source = new EventSource(element.dataset.stream);
      for (const type of ["deployment", "wave", "step"]) source.addEventListener(type, soon);
      source.addEventListener("end", function () {
        source.close();
        soon();
      });
      return;
    }
    const poll = setInterval(function () {
      refresh(id, url).then((streamed) => {
        if (!streamed) clearInterval(poll);
      });
    }, POLL_MS);
  }

  document.querySelectorAll("[data-deployment-progress][data-stream]").forEach(follow);
})();
