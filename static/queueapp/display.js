// The lobby display: each new call (a new data-key on #display-announce) is
// queued, then announced with a chime and the voice in the location's
// language, one at a time, so two calls never talk over each other. A recall
// has its own key, so it is announced again.
"use strict";

(() => {
  const PHRASES = {
    en: (n, c, again) => `${again ? "Again: t" : "T"}icket ${n}, please go to ${c}.`,
    fr: (n, c, again) => `${again ? "Rappel : t" : "T"}icket ${n}, présentez-vous à ${c}.`,
    de: (n, c, again) => `${again ? "Noch einmal: " : ""}Nummer ${n}, bitte zu ${c}.`,
    es: (n, c, again) => `${again ? "Repetimos: t" : "T"}urno ${n}, por favor pase a ${c}.`,
    nl: (n, c, again) => `${again ? "Nogmaals: n" : "N"}ummer ${n}, ga naar ${c}.`,
  };
  const seen = new Set();
  const pending = [];
  const spoken = [];
  const queued = [];
  let busy = false;
  let language = "en-US";

  // "A-017" is said "A 17".
  const sayable = (number) => number.replace(/-0*(\d)/, " $1");

  function phrase(call) {
    const words = PHRASES[language.slice(0, 2).toLowerCase()] || PHRASES.en;
    return words(sayable(call.number), call.counter, call.kind === "recalled");
  }

  function current() {
    const el = document.getElementById("display-announce");
    if (!el || !el.dataset.key) return null;
    return { key: el.dataset.key, number: el.dataset.number, counter: el.dataset.counter, kind: el.dataset.kind };
  }

  function speak(text) {
    return new Promise((resolve) => {
      if (!("speechSynthesis" in window)) { resolve(); return; }
      const utterance = new SpeechSynthesisUtterance(text);
      utterance.lang = language;
      utterance.rate = 0.9;
      // A voice that never ends (or is refused) must not block the queue.
      const timer = setTimeout(resolve, 12000);
      utterance.onend = utterance.onerror = () => { clearTimeout(timer); resolve(); };
      window.speechSynthesis.speak(utterance);
    });
  }

  function highlight(call) {
    for (const row of document.querySelectorAll("#display-board .now-serving tr")) {
      if (row.querySelector("th")?.textContent.trim() === call.counter) {
        row.classList.remove("flash");
        void row.offsetWidth; // restart the animation on a recall
        row.classList.add("flash");
      }
    }
  }

  async function announceNext() {
    if (busy) return;
    const call = pending.shift();
    if (!call) return;
    busy = true;
    try {
      highlight(call);
      await window.queueSound.chime();
      await speak(phrase(call));
    } finally {
      spoken.push(call.key);
      busy = false;
      announceNext();
    }
  }

  function check() {
    const call = current();
    if (!call || seen.has(call.key)) return;
    seen.add(call.key);
    pending.push(call);
    queued.push(call.key);
    announceNext();
  }

  function tickClock() {
    const clock = document.getElementById("clock");
    if (clock) clock.textContent = new Date().toLocaleTimeString(language, { hour: "2-digit", minute: "2-digit" });
  }

  document.addEventListener("DOMContentLoaded", () => {
    language = document.querySelector("[data-language]")?.dataset.language || "en-US";
    const first = current();
    if (first) seen.add(first.key); // the last call before the page opened is not news
    new MutationObserver(check).observe(document.body, {
      subtree: true, childList: true, attributes: true, attributeFilter: ["data-key"],
    });
    tickClock();
    setInterval(tickClock, 10000);
    // A TV browser started with an autoplay policy that allows sound needs no click.
    if (navigator.getAutoplayPolicy?.("audiocontext") === "allowed") window.queueSound.unlock();
    const button = document.getElementById("enable-sound");
    if (button && !window.queueSound.ready()) {
      button.hidden = false;
      button.addEventListener("click", () => {
        window.queueSound.unlock();
        speak(""); // lets the voice speak later without another click
        button.hidden = true;
      });
    }
  });

  window.queueDisplay = { queued, spoken, pending };
})();
