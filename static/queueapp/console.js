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

// A Call button on each row of the live waiting list (the rows come from the
// live fragment, which carries no forms): it submits the #call-ticket form.
function addCallButtons() {
  for (const head of document.querySelectorAll("#console-feed thead tr")) {
    if (head.querySelector(".call-col")) continue;
    const th = document.createElement("th");
    th.className = "call-col";
    th.scope = "col";
    th.innerHTML = `<span class="sr-only">${gettext("Action")}</span>`;
    head.append(th);
  }
  for (const row of document.querySelectorAll("#console-feed tr[data-ticket]")) {
    if (row.querySelector(".call-one")) continue;
    const number = row.querySelector(".ticket-number")?.textContent.trim() || gettext("this ticket");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn small call-one";
    button.textContent = gettext("Call");
    button.setAttribute("aria-label", interpolate(gettext("Call %s"), [number]));
    button.addEventListener("click", () => {
      const form = document.getElementById("call-ticket");
      if (!form) return;
      form.elements.ticket.value = row.dataset.ticket;
      form.requestSubmit();
    });
    const cell = document.createElement("td");
    cell.append(button);
    row.append(cell);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  addCallButtons();
  new MutationObserver(addCallButtons).observe(document.body, { subtree: true, childList: true });
});
