// Keyboard shortcuts of the staff console: a key clicks the button (or focuses
// the field) marked data-shortcut="<key>". Ignored while typing in a field.
"use strict";

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (event.target.closest("input, select, textarea, [contenteditable]")) return;
  const target = document.querySelector(`[data-shortcut="${CSS.escape(event.key.toLowerCase())}"]`);
  if (!target || target.disabled) return;
  event.preventDefault();
  if (target.matches("select, input")) target.focus();
  else target.click();
});
