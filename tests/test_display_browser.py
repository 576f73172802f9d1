"""The lobby display in a real browser: what it says, and that it fits the TV.

Debian's Chromium has no speech voices, which is the TV this guards: the call
must still be said, by the pre-made clips (scripts/make_voice_clips.py), in
each of the location's languages in turn, one clip at a time. The page's audio
is observed from outside the app: an init script records every <audio> the
page starts and every one that ends.
"""

from __future__ import annotations


import pytest

from queueapp.services import do_call_next, do_complete, do_join
from tests.browser_support import BROWSER_MARKS
# The shared daphne and Chromium of the browser tests (module-scoped: one of each per module).
from tests.test_browser_pages import browser, log_in, server_url, wait_socket_open  # noqa: F401
from tests.conftest import make_counter, make_queue, make_user

pytestmark = [
    *BROWSER_MARKS,
]

# Records, in order, each clip as it starts playing and as it ends, and each
# chime tone (the chime is Web Audio oscillators), with the time in ms.
RECORD_AUDIO = """
window.__audio = [];
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  if (!this.__watched) {
    this.__watched = true;
    // Capturing listeners run before the page's own (onended): the record is in true order.
    // "play" (once per play()), not "playing", which comes again after each rebuffering.
    this.addEventListener("play", () => window.__audio.push(["start", this.src, performance.now()]), true);
    this.addEventListener("ended", () => window.__audio.push(["end", this.src, performance.now()]), true);
  }
  return play.call(this);
};
const oscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__audio.push(["tone", "", performance.now()]);
  return oscillator.call(this);
};
"""


def clip_names(events: list, kind: str) -> list[str]:
    """'/static/queueapp/voice/de/17.abc123.mp3' -> 'de/17', for the events of `kind`."""
    names = []
    for what, src, _ in events:
        if what == kind:
            language, file = src.split("/voice/")[1].split("/")
            names.append(f"{language}/{file.split('.')[0]}")
    return names


def test_a_call_is_said_in_german_then_english_with_clips_when_no_voice_is_installed(
        transactional_db, settings, browser, server_url):
    from queueapp.models import Location

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    location = Location.objects.create(name="Praxis Mitte", slug="mitte", timezone="Europe/Berlin",
                                       default_language="de", languages=["de", "en"])
    queue = make_queue(location, "Allgemein", "A")
    counter = make_counter(location, "Schalter 3", [queue])
    make_user("alice", location)
    for _ in range(18):
        do_join(queue)
    for _ in range(16):  # A-001 .. A-016 were called before the display was switched on
        do_complete(do_call_next(queue, counter=counter))

    context = browser.new_context()
    display = context.new_page()
    display.add_init_script(RECORD_AUDIO)
    display.goto(f"{server_url}/display/mitte/")
    assert display.evaluate("speechSynthesis.getVoices().length") == 0  # the TV this test is about
    # The lobby screen is in the location's language (German here), its button too.
    display.get_by_role("button", name="Gong und Ansage einschalten").click()
    wait_socket_open(display, "/ws/display/mitte/")

    staff = context.new_page()
    log_in(staff, server_url)
    staff.goto(f"{server_url}/console/{counter.pk}/")
    staff.get_by_role("button", name="Call next").click()  # A-017 to Schalter 3
    staff.wait_for_selector("#console-actions >> text=A-017")
    staff.get_by_role("button", name="Complete").click()
    staff.wait_for_selector("#console-actions >> text=A-017 completed.")
    staff.get_by_role("button", name="Call next").click()  # A-018, queued behind A-017's announcement

    sentence = ["ticket", "a", "17", "go_counter", "3"]
    expected = ([f"de/{w}" for w in sentence] + [f"en/{w}" for w in sentence]
                + [f"de/{w}" for w in ["ticket", "a", "18", "go_counter", "3"]]
                + [f"en/{w}" for w in ["ticket", "a", "18", "go_counter", "3"]])
    display.wait_for_function(f"window.__audio.filter((e) => e[0] === 'end').length >= {len(expected)}",
                              timeout=60_000)
    events = display.evaluate("window.__audio")
    assert clip_names(events, "start") == expected
    assert clip_names(events, "end") == expected
    # One sound at a time: every clip ends before the next starts, and each
    # call's chime rings before its words (the two tones of a chime come first).
    playing = None
    tones_since_words = 0
    for what, src, _ in events:
        if what == "tone":
            assert playing is None, f"a chime rang while {playing} played"
            tones_since_words += 1
        elif what == "start":
            assert playing is None, f"{src} started while {playing} played"
            playing = src
        else:
            assert src == playing
            playing = None
    starts_of_calls = [i for i, e in enumerate(events) if e[0] == "start" and e[1].split("/voice/")[1].startswith("de/ticket")]
    for start in starts_of_calls:
        assert [e[0] for e in events[start - 2:start]] == ["tone", "tone"]
    # What the display shows and says stays public: numbers and counters only.
    assert display.evaluate("window.queueDisplay.spoken.length") == 2
    context.close()


FITS = [(1366, 768), (1920, 1080)]

# Every visible element of the display inside the viewport, text not clipped
# by its box, and each waiting count the topmost element at its own centre.
MEASURE = """
() => {
  const width = window.innerWidth, height = window.innerHeight;
  const problems = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : "") +
    " '" + el.textContent.trim().slice(0, 30) + "'";
  if (document.documentElement.scrollHeight > height) problems.push(`page scrolls: ${document.documentElement.scrollHeight} > ${height}`);
  if (document.documentElement.scrollWidth > width) problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
  for (const el of document.querySelectorAll(".display h1, #clock, #display-announce p, #display-board h2, #display-board tr, #display-board li")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) { problems.push(`not shown: ${name(el)}`); continue; }
    if (box.left < 0 || box.top < 0 || box.right > width + 0.5 || box.bottom > height + 0.5) {
      problems.push(`outside the screen: ${name(el)} ${JSON.stringify(box)}`);
    }
    for (let up = el; up && up !== document.body; up = up.parentElement) {
      const outer = up.getBoundingClientRect();
      if (getComputedStyle(up).overflow !== "visible" && (box.bottom > outer.bottom + 0.5 || box.right > outer.right + 0.5)) {
        problems.push(`cut off by ${name(up)}: ${name(el)}`);
      }
    }
  }
  for (const el of document.querySelectorAll(".waiting-counts li")) {
    const box = el.getBoundingClientRect();
    for (const [x, y] of [[box.left + 2, box.top + box.height / 2], [box.right - 2, box.top + box.height / 2]]) {
      const top = document.elementFromPoint(x, y);
      if (!top || !el.contains(top)) problems.push(`${name(el)} covered by ${top ? name(top) : "nothing"}`);
    }
  }
  return problems;
}
"""


@pytest.mark.parametrize("size", FITS, ids=[f"{w}x{h}" for w, h in FITS])
def test_the_display_fits_the_tv_after_thirty_calls(transactional_db, browser, server_url, size):
    from queueapp.models import Location

    location = Location.objects.create(name="Riverside Community Health Centre", slug="riverside-fit")
    queues = [make_queue(location, name, prefix) for name, prefix in
              [("General practice and vaccinations", "A"), ("Laboratory and blood tests", "L"),
               ("Pharmacy", "P")]]
    counters = [make_counter(location, f"Counter {n}", queues) for n in range(1, 11)]
    for queue in queues:
        for _ in range(40):
            do_join(queue)
    for call in range(30):
        counter = counters[call % len(counters)]
        ticket = do_call_next(counter=counter)
        if call < 20:
            do_complete(ticket)

    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height})
    display = context.new_page()
    display.goto(f"{server_url}/display/riverside-fit/")
    display.wait_for_selector("#display-board .waiting-counts li")
    display.wait_for_timeout(300)  # the board's fit runs after the first paint
    assert display.locator("#display-board .now-serving tr").count() == 10
    assert display.locator("#display-board .last-calls li").count() == 8
    assert display.evaluate(MEASURE) == []
    context.close()
