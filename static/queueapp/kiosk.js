// The kiosk: a Print button on the ticket where the browser can print, and the
// return to the start screen for the next person (<meta name="kiosk-return">:
// after that many seconds without a touch; every touch or key starts the wait
// again, so nobody is sent away while still reading or choosing).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("print-ticket");
  if (button && window.print) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
  const back = document.querySelector('meta[name="kiosk-return"]');
  if (!back) return;
  const seconds = Number(back.content);
  let timer = null;
  const restart = () => {
    clearTimeout(timer);
    timer = setTimeout(() => window.location.assign(back.dataset.url), seconds * 1000);
  };
  for (const kind of ["pointerdown", "keydown"]) window.addEventListener(kind, restart, { passive: true });
  restart();
});
