// The tokens page: copy a new token's secret or calendar address, and confirm before revoking one.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const field = document.querySelector(button.dataset.copy);
      const status = button.closest(".alert").querySelector("[data-copy-status]");
      try {
        await navigator.clipboard.writeText(field.value);
        status.textContent = "Copied to the clipboard.";
      } catch {
        field.select();
        status.textContent = "Select the text and copy it (the browser refused the clipboard).";
      }
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
});
