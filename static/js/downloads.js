// Library page: "Copy" buttons put the curl line next to them on the clipboard.
document.addEventListener("click", (event) => {
  const button = event.target.closest(".copy-curl");
  if (!button) return;
  const code = button.parentElement.querySelector("code");
  if (!code) return;
  navigator.clipboard.writeText(code.textContent).then(
    () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); },
    () => { button.textContent = "Select and copy"; }
  );
});
