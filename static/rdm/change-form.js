// The change form: the template field matters for standard changes only; choosing a template ticks its
// services and sets its risk, as the service will (the page embeds each template's services and risk).
(() => {
  const form = document.querySelector(".rdm-change-form");
  const data = document.getElementById("change-templates");
  const template = form && form.querySelector("select[name=template]");
  if (!template || !data) return;
  const templates = JSON.parse(data.textContent);
  const templateBlock = template.closest(".mb-3");
  const chosenType = () => (form.querySelector("input[name=change_type]:checked") || {}).value;

  const showTemplate = () => { templateBlock.hidden = chosenType() !== "standard"; };
  const applyTemplate = () => {
    const chosen = templates[template.value];
    if (!chosen) return;
    form.querySelectorAll("input[name=services]").forEach((box) => {
      box.checked = chosen.services.includes(Number(box.value));
    });
    const risk = form.querySelector("select[name=risk]");
    if (risk) risk.value = chosen.risk;
  };

  form.querySelectorAll("input[name=change_type]").forEach((radio) => radio.addEventListener("change", showTemplate));
  template.addEventListener("change", applyTemplate);
  showTemplate();
})();
