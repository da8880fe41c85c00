// Times in the viewer's own zone: each <time data-local datetime="…"> is rewritten in the browser's zone
// (the UTC text the server wrote stays as its title), and [data-viewer-zone] names that zone.
document.addEventListener("DOMContentLoaded", () => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const format = new Intl.DateTimeFormat(undefined, {weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit"});
  document.querySelectorAll("time[data-local]").forEach((element) => {
    element.title = element.textContent;
    element.textContent = format.format(new Date(element.getAttribute("datetime")));
  });
  document.querySelectorAll("[data-viewer-zone]").forEach((element) => { element.textContent = zone; });
});
