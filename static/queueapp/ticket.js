// The patient page: when the live status says "called" (or a recall raises the
// call count) ring, vibrate and make the page impossible to miss; follow a
// transferred ticket to its new page.
"use strict";

(() => {
  let last = null;

  function read() {
    const el = document.getElementById("ticket-status");
    if (!el) return null;
    return {
      status: el.dataset.status,
      counter: el.dataset.counter || "",
      calls: Number(el.dataset.callCount || 0),
    };
  }

  async function alertCalled(now) {
    document.body.classList.remove("flash");
    void document.body.offsetWidth; // restart the animation on a recall
    document.body.classList.add("flash");
    const callout = document.querySelector("#ticket-status .ticket-call");
    if (callout) { callout.tabIndex = -1; callout.focus(); } // screen readers read it out
    if (navigator.vibrate && navigator.userActivation?.hasBeenActive) {
      navigator.vibrate([400, 150, 400, 150, 800]);
    }
    for (let ring = 0; ring < 2; ring += 1) await window.queueSound.chime();
  }

  function follow() {
    const link = document.querySelector("#ticket-status a[data-follow]");
    if (link) window.location.replace(link.href);
    else window.location.reload();
  }

  function check() {
    const now = read();
    if (!now) return;
    const number = document.querySelector("#ticket-status .ticket-number")?.textContent.trim() || "";
    if (last) {
      const newlyCalled = now.status === "called" && (last.status !== "called" || now.calls > last.calls);
      if (newlyCalled) alertCalled(now);
      if (now.status === "transferred" && last.status !== "transferred") follow();
    }
    document.body.classList.toggle("is-called", now.status === "called");
    document.title = now.status === "called"
      ? interpolate(gettext("Go to %(counter)s · %(number)s"), { counter: now.counter, number }, true)
      : interpolate(gettext("%(number)s · your place"), { number }, true);
    last = now;
  }

  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(check).observe(document.body, {
      subtree: true, childList: true, attributes: true, attributeFilter: ["data-status", "data-call-count"],
    });
    check();
    const button = document.getElementById("enable-alerts");
    if (!button) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      window.queueSound.unlock();
      button.textContent = gettext("Sound and vibration are on");
      button.disabled = true;
      navigator.vibrate?.(100);
      await window.queueSound.chime();
    });
  });
})();
