"""Every message in the code is translated in every shipped language, with its
placeholders intact (issue 15), and the compiled catalogs are the committed ones.

The extraction is Django's makemessages (as `make messages` runs it), in a copy
of the code, so the committed .po files are not touched: a string added to a
template or a `gettext` call without its German, Spanish and Arabic
translations fails here, naming it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from django.conf import settings
from django.utils import translation

from queueapp.management import translations
from queueapp.management.translations import catalog_problems, catalogs, placeholders, read_catalog

ROOT = Path(settings.BASE_DIR)
CODE = ["manage.py", "config", "queueapp", "templates", "static", "locale"]


def _copy_code(into: Path) -> None:
    for name in CODE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
        else:
            shutil.copy2(source, into / name)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """The locale directory as `make messages` would leave it for the current code."""
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        pytest.skip("GNU gettext (xgettext, msgmerge) is not installed: `make test` installs it "
                    "(apt-get install gettext)")
    copy = tmp_path_factory.mktemp("code")
    _copy_code(copy)
    done = subprocess.run([sys.executable, "manage.py", "update_messages"], cwd=copy, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings"},
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return copy / "locale"


def test_every_message_in_the_code_is_translated_in_every_language(extracted, monkeypatch):
    monkeypatch.setattr(translations, "LOCALE_DIR", extracted)
    problems = catalog_problems()
    assert not problems, ("Messages without a complete translation (add them to the .po files, "
                          "README \"Languages\"):\n" + "\n".join(problems))


def test_the_committed_catalogs_are_complete_with_their_placeholders():
    assert catalog_problems() == []


def test_the_catalogs_hold_messages_of_the_pages_alerts_and_errors():
    """A guard on the extraction itself: if it silently found nothing (a wrong
    ignore pattern), the completeness test above would pass on an empty file."""
    ids = {message.id for message in read_catalog(ROOT / "locale/de/LC_MESSAGES/django.po", "de")}
    assert "Skip to content" in ids  # templates
    assert "It's your turn ({number})" in ids  # alert texts (Python)


def test_the_placeholder_check_catches_a_dropped_or_renamed_placeholder():
    assert placeholders("%(name)s is full (%(count)d waiting)") == ["%(count)d", "%(name)s"]
    assert placeholders("{location}: go to {counter}.") == ["{counter}", "{location}"]
    assert placeholders("100%% sure, {{literal}}") == []
    assert placeholders("{location}: geh zu {Schalter}.") != placeholders("{location}: go to {counter}.")


def test_a_translation_that_drops_a_placeholder_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "de" / "LC_MESSAGES"
    bad.mkdir(parents=True)
    (bad / "django.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "%(queue)s is paused."\nmsgstr "Die Warteschlange ist pausiert."\n\n'
        'msgid "Untranslated"\nmsgstr ""\n', encoding="utf-8")
    monkeypatch.setattr(translations, "LOCALE_DIR", tmp_path)
    problems = [p for p in catalog_problems() if p.startswith("de/django.po")]
    assert any("placeholders [] instead of ['%(queue)s']" in p for p in problems), problems
    assert any("'Untranslated': not translated" in p for p in problems), problems


def _text(context):  # Babel's read_mo gives a message's context as bytes
    return context.decode() if isinstance(context, bytes) else context


def _key(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def test_the_compiled_catalogs_match_the_po_files():
    """The .mo Django reads (built by `compile_catalogs`, as `make` and the test
    session do) says what the .po says."""
    translations.compile_catalogs()
    for code, _domain, po in catalogs():
        if not po.exists():
            continue
        with po.with_suffix(".mo").open("rb") as handle:
            compiled = {(_text(m.context), _key(m.id)): _key(m.string) for m in read_mo(handle) if m.id}
        source = {(m.context, _key(m.id)): _key(m.string) for m in read_catalog(po, code) if m.id}
        assert compiled == source, f"{po.with_suffix('.mo')} differs from its .po"


@pytest.mark.parametrize("code, expected", [("de", "Zum Inhalt springen"), ("es", "Saltar al contenido"),
                                            ("ar", "انتقل إلى المحتوى")])
def test_django_reads_the_compiled_catalogs(code, expected):
    with translation.override(code):
        assert translation.gettext("Skip to content") == expected
