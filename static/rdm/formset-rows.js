// Rows of a formset added and removed on the page (templates/releases/inc/formset_rows.html): "Add" copies the
// formset's empty row with the next index; "Remove" ticks the row's hidden DELETE box and hides it. Either way
// the form hears a change, so a form that saves itself on change (the review's) saves the new rows.
document.addEventListener("click", (event) => {
  const add = event.target.closest("[data-formset-add]");
  if (add) {
    const prefix = add.dataset.formsetAdd;
    const total = document.getElementById(`id_${prefix}-TOTAL_FORMS`);
    const empty = document.getElementById(`${prefix}-empty-row`);
    const index = Number(total.value);
    const holder = document.createElement("div");
    holder.innerHTML = empty.innerHTML.replaceAll("__prefix__", String(index));
    const row = holder.firstElementChild;
    document.getElementById(`${prefix}-rows`).append(row);
    total.value = String(index + 1);
    row.querySelector("input:not([type=hidden]), textarea, select").focus();
    total.dispatchEvent(new Event("change", { bubbles: true }));
    return;
  }
  const remove = event.target.closest("[data-formset-remove]");
  if (remove) {
    const row = remove.closest("[data-formset-row]");
    const box = row.querySelector("input[name$='-DELETE']");
    box.checked = true;
    row.hidden = true;
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }
});
