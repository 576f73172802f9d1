"""What the lobby display says, and in which languages.

The words and the clips that say them without a browser voice are made by
`scripts/make_voice_clips.py` (static/queueapp/voice/); this module only reads
its `clips.json` and hands the display page the words and clip URLs of the
languages it announces in (`display.js` joins them).
"""

from __future__ import annotations

import json
from functools import lru_cache

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage

from .models import Location

CLIPS = "queueapp/voice/clips.json"
MAX_LANGUAGES = 2  # each call is said once per language, in turn: more would keep a lobby waiting


@lru_cache(maxsize=1)
def _manifest() -> dict:
    path = finders.find(CLIPS) or (settings.STATIC_ROOT / CLIPS)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def spoken_languages() -> list[str]:
    """The languages there are clips for."""
    return sorted(_manifest()["languages"])


def announcement_languages(location: Location) -> list[str]:
    """The languages the display announces in: the location's default, then its
    next offered language (`Location.offered_languages` order), at most `MAX_LANGUAGES`."""
    return location.offered_languages[:MAX_LANGUAGES]


def voice_context(languages: list[str]) -> dict:
    """The display page's `voice` data: per language its words and the URL of
    each clip (a language without clips gets the words of English, so a browser
    voice of that language is tried and the English clips are the fallback)."""
    manifest = _manifest()
    spoken = []
    for code in languages:
        clips_in = code if code in manifest["languages"] else "en"
        texts = manifest["languages"][clips_in]
        spoken.append({
            "code": code,
            "clips_in": clips_in,
            "words": texts,
            "clips": {name: staticfiles_storage.url(f"queueapp/voice/{clips_in}/{name}.mp3") for name in texts},
        })
    return {"room_words": manifest["room_words"], "languages": spoken}
