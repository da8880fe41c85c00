// The review form saves itself: htmx posts it to its autosave address a moment after typing stops. Leaving the
// page before that moment sends the last changes anyway (a beacon survives the page), so nothing typed is lost.
(() => {
  const form = document.querySelector(".rdm-review-form");
  if (!form || !navigator.sendBeacon) return;
  let unsaved = false;
  const touched = () => { unsaved = true; };
  form.addEventListener("input", touched);
  form.addEventListener("change", touched);
  form.addEventListener("htmx:beforeRequest", () => { unsaved = false; });
  form.addEventListener("submit", () => { unsaved = false; });
  window.addEventListener("pagehide", () => {
    if (unsaved) navigator.sendBeacon(form.getAttribute("hx-post"), new FormData(form));
  });
})();
