#!/usr/bin/env python3
"""Make the lobby display's spoken fallback: short clips per language.

A TV without installed voices (or offline, so no online voice) still says
"Nummer A 17, bitte zu Schalter 3": the display joins these clips in sequence
(static/queueapp/display.js). They are made here, at build time, with a free
offline engine and committed, so neither the server nor the TV needs the engine:

    apt-get install -y espeak-ng sox libsox-fmt-mp3
    python scripts/make_voice_clips.py

Output: static/queueapp/voice/<language>/<clip>.mp3 (mono, 16 kHz, 16 kbit/s)
and static/queueapp/voice/clips.json, which holds, per language, each clip's
text (also what a browser voice is given, so both ways say the same words)
and the words that make a counter a room. Run it again after changing WORDS.

Clips per language: the numbers 0-99, each hundred said alone (`h1`..`h9`) and
before a rest (`p1`..`p9`: Spanish says "cien" alone but "ciento diecisiete"),
the letters a-z, and the phrase words below.
"""

from __future__ import annotations

import json
import shutil
import string
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "static" / "queueapp" / "voice"

# The words of an announcement, per language (an espeak-ng voice name each):
# "<again> <ticket> A 17, <go_counter> 3" / "... <go_room> 3".
WORDS = {
    "en": {
        "ticket": "Ticket", "again": "Again:",
        "go_counter": "please go to counter", "go_room": "please go to room",
    },
    "de": {
        "ticket": "Nummer", "again": "Noch einmal:",
        "go_counter": "bitte zu Schalter", "go_room": "bitte in Raum",
    },
    "es": {
        "ticket": "Turno", "again": "Repetimos:",
        "go_counter": "pase a la ventanilla", "go_room": "pase a la sala",
    },
    "ar": {
        "ticket": "التذكرة", "again": "مرة أخرى:",
        "go_counter": "يرجى التوجه إلى الشباك", "go_room": "يرجى التوجه إلى الغرفة",
    },
}
# How each hundred is said before a rest, where it differs from the hundred alone.
HUNDRED_BEFORE_REST = {
    "es": {1: "ciento"},
    "ar": {n: f"{n * 100} و" for n in range(1, 10)},
}
# A counter whose name starts with one of these words is a room ("Raum 3").
ROOM_WORDS = ["room", "raum", "zimmer", "sala", "consulta", "salle", "غرفة"]

RATE = 16000
BITRATE = 16  # kbit/s: speech at 16 kHz stays clear; 592 clips come to about 1 MB


def clip_texts(language: str) -> dict[str, str]:
    texts = {str(n): str(n) for n in range(100)}
    for n in range(1, 10):
        texts[f"h{n}"] = str(n * 100)
        texts[f"p{n}"] = HUNDRED_BEFORE_REST.get(language, {}).get(n, str(n * 100))
    for letter in string.ascii_lowercase:
        # espeak-ng spells a lone capital letter by its name in the voice's language.
        texts[letter] = letter.upper()
    texts.update(WORDS[language])
    return texts


def make_clip(language: str, text: str, target: Path, work: Path) -> None:
    wav = work / "clip.wav"
    subprocess.run(["espeak-ng", "-v", language, "-s", "150", "-w", str(wav), text], check=True)
    # Mono at 16 kHz, silence trimmed at both ends so the joined clips flow.
    subprocess.run(["sox", str(wav), "-r", str(RATE), "-c", "1", "-C", str(BITRATE), str(target),
                    "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"],
                   check=True)


def main() -> int:
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            print(f"{tool} is missing: apt-get install -y espeak-ng sox libsox-fmt-mp3", file=sys.stderr)
            return 1
    manifest: dict = {"room_words": ROOM_WORDS, "languages": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for language in WORDS:
            folder = OUT / language
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            texts = clip_texts(language)
            for name, text in texts.items():
                make_clip(language, text, folder / f"{name}.mp3", Path(tmp))
            manifest["languages"][language] = texts
    (OUT / "clips.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*.mp3"))
    count = sum(1 for _ in OUT.rglob("*.mp3"))
    print(f"{count} clips, {total / 1024:.0f} KiB in {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
