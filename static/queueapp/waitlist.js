// The staff waitlist board: open offers count down to their expiry ("4:32 left").
"use strict";

(() => {
  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll("time[data-countdown]")) {
      const left = Math.round((Date.parse(el.getAttribute("datetime")) - now) / 1000);
      if (Number.isNaN(left)) continue;
      el.textContent = left <= 0 ? gettext("expiring")
        : interpolate(gettext("%s left"), [`${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`]);
    }
  }
  document.addEventListener("DOMContentLoaded", () => { tick(); setInterval(tick, 1000); });
})();
