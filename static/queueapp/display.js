// The lobby display: each new call (a new data-key on #display-announce) is
// queued, then announced: a chime, then the call said in each of the
// location's languages in turn ("Nummer A 17, bitte zu Schalter 3", then
// "Ticket A 17, please go to counter 3"). One call at a time, each sound
// awaited to its end, so two calls never talk over each other. A recall has
// its own key, so it is announced again.
//
// Each language is said by a browser voice of that language when the browser
// has one, and otherwise by joining short pre-made clips
// (scripts/make_voice_clips.py; the words and clip URLs come in the page as
// #display-voice), so a TV without voices, or offline, still speaks.
"use strict";

(() => {
  const seen = new Set();
  const pending = [];
  const spoken = [];
  const queued = [];
  let busy = false;
  let voice = { room_words: [], languages: [] };

  // "A-017" is the letters ["a"] and the number 17.
  function parseNumber(number) {
    const match = /^([A-Za-z]*)[-\s]*0*(\d+)$/.exec(number.trim());
    if (!match) return { letters: [], value: null };
    return { letters: [...match[1].toLowerCase()], value: Number(match[2]) };
  }

  // "Counter 3" / "Schalter 3" / "Room 2": a counter or a room, and its number (if any).
  function parseCounter(name) {
    const words = name.trim().toLowerCase().split(/\s+/);
    const kind = voice.room_words.includes(words[0]) ? "room" : "counter";
    const match = /(\d+)\s*$/.exec(name);
    return { kind, value: match ? Number(match[1]) : null };
  }

  // The clip names that say a number: 0-99 whole, hundreds as "p1" + rest, longer ones digit by digit.
  function numberClips(value) {
    if (value < 100) return [String(value)];
    if (value < 1000) {
      const hundreds = Math.floor(value / 100);
      const rest = value % 100;
      return rest ? [`p${hundreds}`, String(rest)] : [`h${hundreds}`];
    }
    return [...String(value)];
  }

  // One call in one language, as clip names: [again] ticket letters number go_<kind> number.
  function pieces(call) {
    const ticket = parseNumber(call.number);
    const counter = parseCounter(call.counter);
    const out = call.kind === "recalled" ? ["again", "ticket"] : ["ticket"];
    out.push(...ticket.letters);
    if (ticket.value !== null) out.push(...numberClips(ticket.value));
    out.push(`go_${counter.kind}`);
    if (counter.value !== null) out.push(...numberClips(counter.value));
    return out;
  }

  // What a browser voice is given: the same words, with the numbers as digits
  // (the voice reads them in its language) and a counter without a number by its name.
  function sentence(language, call) {
    const ticket = parseNumber(call.number);
    const counter = parseCounter(call.counter);
    const words = language.words;
    const parts = call.kind === "recalled" ? [words.again] : [];
    parts.push(`${words.ticket} ${ticket.letters.join("").toUpperCase()} ${ticket.value ?? call.number},`);
    parts.push(`${words[`go_${counter.kind}`]} ${counter.value ?? call.counter}.`);
    return parts.join(" ");
  }

  function browserVoice(code) {
    if (!("speechSynthesis" in window)) return null;
    return window.speechSynthesis.getVoices().find((v) => v.lang.toLowerCase().split(/[-_]/)[0] === code) || null;
  }

  function speak(text, chosen) {
    return new Promise((resolve) => {
      const utterance = new SpeechSynthesisUtterance(text);
      utterance.voice = chosen;
      utterance.lang = chosen.lang;
      utterance.rate = 0.9;
      // A voice that never ends (or is refused) must not block the queue.
      const timer = setTimeout(resolve, 12000);
      utterance.onend = utterance.onerror = () => { clearTimeout(timer); resolve(); };
      window.speechSynthesis.speak(utterance);
    });
  }

  // Plays one clip to its end; a clip that fails or stalls is skipped, never waited on for ever.
  function playClip(audio) {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); audio.onended = audio.onerror = null; resolve(); };
      const timer = setTimeout(done, 5000);
      audio.onended = audio.onerror = done;
      audio.play().catch(done);
    });
  }

  async function sayWithClips(language, names) {
    // Every clip of the sentence is loading before the first plays, so the gaps stay short.
    const clips = names.map((name) => language.clips[name]).filter(Boolean).map((url) => {
      const audio = new Audio(url);
      audio.preload = "auto";
      return audio;
    });
    for (const audio of clips) await playClip(audio);
  }

  async function say(language, call) {
    const chosen = browserVoice(language.code);
    if (chosen) await speak(sentence(language, call), chosen);
    else await sayWithClips(language, pieces(call));
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
      for (const language of voice.languages) await say(language, call);
    } finally {
      spoken.push(call.key);
      busy = false;
      announceNext();
    }
  }

  function current() {
    const el = document.getElementById("display-announce");
    if (!el || !el.dataset.key) return null;
    return { key: el.dataset.key, number: el.dataset.number, counter: el.dataset.counter, kind: el.dataset.kind };
  }

  function check() {
    const call = current();
    if (!call || seen.has(call.key)) return;
    seen.add(call.key);
    pending.push(call);
    queued.push(call.key);
    announceNext();
  }

  // However many counters and calls there are, the board fits the screen: its
  // type shrinks (--fit, see app.css) until nothing overflows it.
  function fitBoard() {
    const display = document.querySelector(".display");
    const board = document.getElementById("display-board");
    if (!display || !board) return;
    const overflows = () => board.scrollHeight > board.clientHeight + 1 || board.scrollWidth > board.clientWidth + 1;
    let fit = 1;
    display.style.setProperty("--fit", fit);
    while (overflows() && fit > 0.3) {
      fit = Math.round((fit - 0.05) * 100) / 100;
      display.style.setProperty("--fit", fit);
    }
  }

  function tickClock() {
    const clock = document.getElementById("clock");
    const language = document.documentElement.lang || undefined;
    if (clock) clock.textContent = new Date().toLocaleTimeString(language, { hour: "2-digit", minute: "2-digit" });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const data = document.getElementById("display-voice");
    if (data) voice = JSON.parse(data.textContent);
    const first = current();
    if (first) seen.add(first.key); // the last call before the page opened is not news
    fitBoard();
    window.addEventListener("resize", fitBoard);
    new MutationObserver(() => { fitBoard(); check(); }).observe(document.body, {
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
        // Lets a voice speak later without another click (clips need none once the page was clicked).
        if ("speechSynthesis" in window) window.speechSynthesis.speak(new SpeechSynthesisUtterance(""));
        button.hidden = true;
      });
    }
  });

  window.queueDisplay = { queued, spoken, pending, pieces, sentence };
})();
