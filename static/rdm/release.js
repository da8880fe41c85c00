// Copy buttons: put a digest (data-copy) on the clipboard and say so on the button.
document.addEventListener("click", (event) => {
  const button = event.target.closest(".rdm-copy");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
});
