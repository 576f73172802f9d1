// The kiosk ticket: a Print button where the browser can print.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("print-ticket");
  if (!button || !window.print) return;
  button.hidden = false;
  button.addEventListener("click", () => window.print());
});
