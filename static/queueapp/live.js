// Shared by every page: tells people when the live connection or the network
// is down (htmx's ws extension reconnects by itself), and a small chime made
// with Web Audio, unlocked by the first touch, click or key press.
"use strict";

(() => {
  let socketUp = null; // unknown until the first ws event

  function showConnection() {
    const banner = document.getElementById("conn-status");
    if (!banner) return;
    let text = "";
    if (!navigator.onLine) {
      text = gettext("You are offline. This page will catch up when the connection is back.");
    } else if (socketUp === false) {
      text = gettext("Reconnecting… this page will update by itself.");
    }
    banner.textContent = text;
    banner.hidden = !text;
    document.body.classList.toggle("is-offline", Boolean(text));
  }

  document.addEventListener("htmx:after:ws:connection", () => { socketUp = true; showConnection(); });
  document.addEventListener("htmx:ws:close", () => { socketUp = false; showConnection(); });
  window.addEventListener("online", showConnection);
  window.addEventListener("offline", showConnection);
  document.addEventListener("DOMContentLoaded", showConnection);
  // htmx and its hx-ws extension are both deferred: if htmx processed the page
  // before the extension registered, process it again (connected elements are skipped).
  document.addEventListener("DOMContentLoaded", () => window.htmx?.process(document.body));
})();

window.queueSound = (() => {
  let context = null;

  function unlock() {
    const Audio = window.AudioContext || window.webkitAudioContext;
    if (!Audio) return false;
    if (!context) context = new Audio();
    if (context.state === "suspended") context.resume();
    return true;
  }

  function ready() {
    return Boolean(context) && context.state === "running";
  }

  function tone(frequency, start, length) {
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.35, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
    osc.connect(gain).connect(context.destination);
    osc.start(start);
    osc.stop(start + length + 0.05);
  }

  // Two falling notes, like a station gong; resolves when it has rung out.
  function chime() {
    return new Promise((resolve) => {
      if (!ready()) { resolve(); return; }
      const now = context.currentTime;
      tone(784, now, 0.9);
      tone(587.3, now + 0.45, 1.1);
      setTimeout(resolve, 1600);
    });
  }

  // Browsers only allow sound after a person interacted with the page.
  for (const kind of ["pointerdown", "keydown", "touchstart"]) {
    window.addEventListener(kind, unlock, { passive: true });
  }
  return { unlock, ready, chime };
})();

// Service targets: a row the server rendered with the instant it passes its
// queue's target (data-passes-at, Unix seconds; the rule is `queueapp.targets`)
// is flagged when that moment comes, between two pushes. The next push renders
// the flag itself.
(() => {
  function flagPassed() {
    const now = Date.now() / 1000;
    for (const row of document.querySelectorAll("[data-passes-at]:not(.past-target)")) {
      if (now >= Number(row.dataset.passesAt)) row.classList.add("past-target");
    }
  }
  setInterval(flagPassed, 5000);
  document.addEventListener("htmx:after:swap", flagPassed);
})();
