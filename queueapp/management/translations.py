"""The translation catalogs: compiled without GNU gettext, and checked.

`locale/<lang>/LC_MESSAGES/{django,djangojs}.po` are the source (committed);
the `.mo` files Django reads are built from them with Babel (pure Python,
pinned), so a fresh machine without `msgfmt` runs `make run`/`make test`:
the Makefile and the test session call `compile_catalogs()`, which rebuilds
only what is older than its `.po`.

`catalog_problems()` is what tests/test_translations.py asserts is empty:
every message translated in every shipped language, no placeholder dropped,
added or changed, no fuzzy entry.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
DOMAINS = ("django", "djangojs")

# %(name)s / %s / %d (Python and Django's interpolate), {name} (str.format).
_PERCENT = re.compile(r"%(?:\((\w+)\))?[#0\- +]*\d*(?:\.\d+)?([sdifr%])")
_BRACES = re.compile(r"(?<!\{)\{(\w*)\}(?!\})")


def placeholders(text: str) -> list[str]:
    """The placeholders of a message, sorted (order may change in a translation)."""
    found = [f"%({name}){kind}" if name else f"%{kind}"
             for name, kind in _PERCENT.findall(text) if kind != "%"]
    found += [f"{{{name}}}" for name in _BRACES.findall(text)]
    return sorted(found)


def catalogs():
    """(language, domain, .po path) of every shipped non-English language."""
    for code, _name in settings.LANGUAGES:
        if code == settings.LANGUAGE_CODE:
            continue
        for domain in DOMAINS:
            yield code, domain, LOCALE_DIR / code / "LC_MESSAGES" / f"{domain}.po"


def read_catalog(path: Path, code: str):
    with path.open("rb") as handle:
        return read_po(handle, locale=code)


def compile_catalogs(*, force: bool = False) -> list[Path]:
    """Write each `.mo` older than its `.po`; returns what was written."""
    written = []
    for code, _domain, po in catalogs():
        mo = po.with_suffix(".mo")
        if not po.exists() or (not force and mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime):
            continue
        catalog = read_catalog(po, code)
        # Written aside and renamed into place: parallel test workers compile at
        # once, and a reader must never see a half-written catalog.
        partial = mo.with_name(f"{mo.name}.{os.getpid()}.tmp")
        with partial.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        os.replace(partial, mo)
        written.append(mo)
    return written


def _forms(message) -> list[str]:
    return list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]


def _strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def catalog_problems(msgids: dict[str, set[str]] | None = None) -> list[str]:
    """What is wrong with the shipped catalogs, one line each.

    `msgids`: per domain, the messages the code holds (from makemessages); each
    must be in every catalog. Without it only the catalogs themselves are checked.
    """
    problems = []
    for code, domain, po in catalogs():
        if not po.exists():
            if domain == "django":  # djangojs exists once a script has a message
                problems.append(f"{po}: missing")
            continue
        catalog = read_catalog(po, code)
        have = set()
        for message in catalog:
            if not message.id:
                continue
            forms, strings = _forms(message), _strings(message)
            have.add(forms[0])
            where = f"{code}/{domain}.po {forms[0]!r}"
            if message.fuzzy:
                problems.append(f"{where}: marked fuzzy (not used until reviewed)")
            if not all(strings):
                problems.append(f"{where}: not translated")
                continue
            # Every plural form must keep the placeholders of the English plural.
            expected = placeholders(forms[-1])
            for text in strings:
                got = placeholders(text)
                if got != expected and not (len(forms) > 1 and got == placeholders(forms[0])):
                    problems.append(f"{where}: placeholders {got} instead of {expected} in {text!r}")
        for missing in sorted((msgids or {}).get(domain, set()) - have):
            problems.append(f"{code}/{domain}.po: no translation of {missing!r}")
    return problems
