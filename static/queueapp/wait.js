// The waiting room: when the live status says the visitor is admitted, go on to
// the protected site (the room's URL redirects there with the admission token).
"use strict";

(() => {
  let gone = false;
  function check() {
    const link = document.querySelector('#ticket-status[data-status="confirmed"] a[data-enter]');
    if (link && !gone) {
      gone = true;
      window.location.replace(window.location.href);
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(check).observe(document.body, {
      subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"],
    });
    check();
  });
})();
