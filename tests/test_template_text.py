"""No template shows a word outside the translation tags (issue 15).

`test_translations.py` proves every *marked* message is translated; this file
proves nothing visible is left *unmarked*. Each template is split by Django's
own template Lexer; what `{% translate %}` / `{% blocktranslate %}` produce,
comments, variables and tags are taken out, and the rest is read with Python's
HTML parser: any letter left in the text of a page (outside <script>/<style>)
or in an attribute a person reads or hears (title, alt, placeholder, aria-*,
a button's value, a meta description) is a miss. String literals handed to
filters that print them (`default`, `yesno`) count too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template.base import Lexer, TokenType, smart_split

TEMPLATES = Path(settings.BASE_DIR) / "templates"

# Text that is the same in every language. Keep this short, and say why.
ALLOWED = {
    "N", "C", "R", "S", "P", "F", "X", "Esc", "Enter",  # keyboard keys shown in <kbd> (console shortcuts)
    "QR",  # the code's name in every language
}
# Blocks whose content is an attribute value or an address, not text: base.html's
# <body class="{% block body_class %}">, <html lang=…>, the minimal live pages' socket path.
NOT_TEXT_BLOCKS = {"body_class", "lang", "socket"}

# Attributes a person reads or a screen reader speaks.
READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description", "aria-roledescription",
                   "aria-valuetext", "label"}
LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# What is left where a tag or variable was: a space (so `<li{% if %} class="x"{% endif %}>`
# still reads as a tag), and a mark where translated text was (so the words either
# side are reported apart).
HOLE = " "
TRANSLATED = "\x01"
PRINTING_FILTERS = re.compile(r"""\|\s*(default|default_if_none|yesno)\s*:\s*(["'])(.*?)\2""")


def _skeleton(source: str, origin: str) -> tuple[str, list[str]]:
    """The template's HTML with every template construct replaced by a mark,
    and the string literals printed by filters outside translation tags."""
    out: list[str] = []
    literals: list[str] = []
    skip_until: str | None = None  # end tag of a block whose content is not shown as written
    for token in Lexer(source).tokenize():
        if skip_until is not None:
            if token.token_type == TokenType.BLOCK and token.contents.split()[0] == skip_until:
                skip_until = None
                out.append(TRANSLATED)
            continue
        if token.token_type == TokenType.TEXT:
            out.append(token.contents)
        elif token.token_type == TokenType.COMMENT:
            out.append(HOLE)
        elif token.token_type == TokenType.VAR:
            literals += [m.group(3) for m in PRINTING_FILTERS.finditer(token.contents)]
            out.append(HOLE)
        else:  # BLOCK
            bits = list(smart_split(token.contents))
            name = bits[0]
            if name in ("blocktranslate", "blocktrans"):
                skip_until = "endblocktranslate" if name == "blocktranslate" else "endblocktrans"
            elif name == "comment":
                skip_until = "endcomment"
            elif name == "block" and bits[1] in NOT_TEXT_BLOCKS:
                skip_until = "endblock"
            elif name in ("translate", "trans"):
                out.append(TRANSLATED if "as" not in bits else HOLE)
            else:
                literals += [m.group(3) for m in PRINTING_FILTERS.finditer(token.contents)]
                out.append(HOLE)
    assert skip_until is None, f"{origin}: unclosed {{% {skip_until} %}}"
    return "".join(out), literals


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._hidden = 0  # inside <script>/<style>

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._hidden += 1
        values = dict(attrs)
        for name, value in attrs:
            shown = name in READ_ATTRIBUTES or (
                name == "value" and tag == "input" and values.get("type") in ("submit", "button", "reset")) or (
                name == "content" and tag == "meta" and values.get("name") in ("description",))
            if shown and value:
                self.found.append(value)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)

    def handle_data(self, data):
        if not self._hidden:
            self.found.append(data)


def untranslated(source: str, origin: str = "<template>") -> list[str]:
    """The words of a template a visitor would see untranslated."""
    skeleton, literals = _skeleton(source, origin)
    reader = _Reader()
    reader.feed(skeleton)
    reader.close()
    misses = []
    for piece in reader.found + literals:
        for part in piece.split(TRANSLATED):
            text = " ".join(part.split())
            if LETTER.search(text) and text.strip(" .,:;()[]·–—-/|×•") not in ALLOWED:
                misses.append(text)
    return misses


def _templates():
    return sorted(p for p in TEMPLATES.rglob("*.html"))


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_template_shows_no_untranslated_text(path):
    misses = untranslated(path.read_text(encoding="utf-8"), str(path))
    assert not misses, (f"{path.relative_to(TEMPLATES)} shows text outside {{% translate %}} / "
                        f"{{% blocktranslate %}}: {misses}")


def test_the_templates_are_found():
    names = {str(p.relative_to(TEMPLATES)) for p in _templates()}
    assert {"base.html", "queueapp/ticket.html", "queueapp/stats.html", "admin/index.html"} <= names


@pytest.mark.parametrize("source, expected", [
    ("<p>Hello</p>", ["Hello"]),
    ("<p>{% translate 'Hello' %}</p>", []),
    ("<p>{% blocktranslate %}Hi {{ name }}{% endblocktranslate %} there</p>", ["there"]),
    ('<a href="{% url "x" %}" title="Go back">{% translate "Back" %}</a>', ["Go back"]),
    ('<img alt="{% translate "Logo" %}" src="{{ src }}">', []),
    ("<p>{{ count }} waiting</p>", ["waiting"]),
    ("<script>const x = 'not shown';</script><style>p{color:red}</style>", []),
    ("{# a note #}{% comment %}Old text{% endcomment %}<p>{{ a|default:'none yet' }}</p>", ["none yet"]),
    ("<p>A-017 · 12:30</p>", ["A-017 · 12:30"]),  # numbers come from variables, never written in
    ('<li{% if mine %} class="mine"{% endif %}>{{ row }}</li>', []),
    ("{# one line #}{# two\n lines are no comment #}", ["{# two lines are no comment #}"]),
    ('<body class="{% block body_class %}x-page{% endblock %}">{% block title %}Queue{% endblock %}', ["Queue"]),
    ('<input type="submit" value="Send"><input type="hidden" value="send">', ["Send"]),
    ("<kbd>N</kbd> <p>&times; &middot; 3</p>", []),
])
def test_the_reader_finds_text_outside_translation_tags(source, expected):
    assert untranslated(source) == expected
