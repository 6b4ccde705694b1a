"""The catalogs (issue 24 item 1): every locale has every sentence of the English template with the same
placeholders and the right number of plural forms; the person's language is negotiated; numbers, sizes and
plurals come out per locale; a sentence a catalog lacks falls back to English alone."""

from __future__ import annotations

import gettext

import pytest
from babel.messages.pofile import read_po

from core import i18n
from core.i18n import LOCALES, _, accept_language, negotiate, ngettext, use
from core.words import human_duration, human_size

# CLDR's plural categories per language, as gettext counts them (Russian three, Arabic six...).
PLURAL_FORMS = {"es": 3, "pt_BR": 3, "ru": 3, "uk": 3, "de": 2, "fr": 3, "tr": 2, "id": 1, "fa": 2, "ar": 6}


def template():
    with i18n.TEMPLATE.open("rb") as fh:
        return read_po(fh)


def test_the_template_is_what_the_code_marks() -> None:
    """`python -m core.i18n extract` was run after the last sentence changed."""
    ours = {m.id for m in template() if m.id}
    found = {m.id for m in i18n.extract() if m.id}
    assert found == ours, (
        f"run `.venv/bin/python -m core.i18n extract`: new {found - ours}, gone {ours - found}"
    )


@pytest.mark.parametrize("locale", LOCALES[1:])
def test_every_catalog_has_every_sentence_with_the_same_placeholders(locale: str) -> None:
    assert i18n.problems(locale, template()) == []


@pytest.mark.parametrize("locale", LOCALES[1:])
def test_plural_forms_count_right(locale: str) -> None:
    catalog = i18n.read_catalog(locale)
    assert catalog.num_plurals == PLURAL_FORMS[locale]
    plurals = [m for m in catalog if isinstance(m.id, tuple)]
    assert plurals and all(len(m.string) == catalog.num_plurals for m in plurals)


def test_the_check_catches_a_missing_sentence_and_a_renamed_placeholder(tmp_path, monkeypatch) -> None:
    """The check itself can fail: a catalog with one sentence dropped and one placeholder renamed."""
    text = i18n.po_path("de").read_text(encoding="utf-8")
    broken = text.replace('msgstr "Teil {index} von {count}"', 'msgstr "Teil {index} von {total}"')
    broken = broken.replace('msgstr "Welches Format?"', 'msgstr ""')
    assert broken != text
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "mediabot.po").write_text(broken, encoding="utf-8")
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    found = i18n.problems("de", template())
    assert any("Part {index} of {count}" in line and "differ" in line for line in found)
    assert any("Which format?" in line for line in found)


def test_russian_and_arabic_plurals() -> None:
    with use("ru"):
        assert [ngettext("{n} chapter", "{n} chapters", n).format(n=n) for n in (1, 3, 5, 21)] == [
            "1 глава", "3 главы", "5 глав", "21 глава",
        ]  # fmt: skip
    with use("ar"):
        forms = {ngettext("{n} chapter", "{n} chapters", n).format(n=n) for n in (0, 1, 2, 3, 11, 100)}
        assert len(forms) == 6
    with use("id"):
        assert ngettext("{n} chapter", "{n} chapters", 1).format(n=1) == "1 bab"
    with use("en"):
        assert ngettext("{n} chapter", "{n} chapters", 2).format(n=2) == "2 chapters"


def test_sizes_and_durations_per_locale() -> None:
    assert (human_size(3_140_000), human_duration(3725)) == ("3.1 MB", "1 h 02 min")
    with use("de"):
        assert (human_size(3_140_000), human_duration(3725)) == ("3,1 MB", "1 Std. 02 Min.")
    with use("ru"):
        assert human_size(3_140_000) == "3,1 МБ"
    with use("fa"):
        assert human_size(3_140_000).endswith("مگابایت")


@pytest.mark.parametrize("locale", LOCALES)
def test_the_quick_number_path_writes_what_babel_writes(locale: str) -> None:
    from babel.numbers import format_decimal

    for value, fmt in [(3.14159, "0.#"), (3.04, "0.#"), (512, "0"), (999.95, "0.#"), (7, "00"), (42, "00")]:
        with use(locale):
            assert i18n.number(round(value, 1) if fmt == "0.#" else value, fmt) == format_decimal(
                round(value, 1) if fmt == "0.#" else value, fmt, locale=locale
            ), (value, fmt)


def test_which_language() -> None:
    assert negotiate("ru") == "ru"
    assert negotiate("pt-br") == "pt_BR" and negotiate("pt") == "pt_BR"
    assert negotiate("es-MX") == "es" and negotiate("en-GB") == "en"
    assert negotiate("ja") == "en" and negotiate(None, "") == "en"
    assert negotiate("ja", "fa-IR") == "fa"
    assert accept_language("fa-IR,fa;q=0.9,en;q=0.5,de;q=0") == ["fa-IR", "fa", "en"]
    assert accept_language("en;q=0.2, uk") == ["uk", "en"]
    assert accept_language("") == [] and accept_language("*;q=x") == []


def test_a_missing_translation_is_english_for_that_sentence_only(monkeypatch) -> None:
    german = i18n.translations("de")
    assert isinstance(german, gettext.GNUTranslations)
    with use("de"):
        assert _("Cancelled.") == "Abgebrochen."
        assert _("A sentence no catalog has.") == "A sentence no catalog has."


def test_the_page_catalog_names_plural_categories() -> None:
    body = i18n.web_catalog("ru")
    assert body["dir"] == "ltr" and body["messages"]["New download"] == "Новая загрузка"
    assert set(body["messages"]["{n} chapter"]) == {"one", "few", "many"}
    assert i18n.web_catalog("ar")["dir"] == "rtl"
    assert i18n.web_catalog("xx") == {"locale": "en", "dir": "ltr", "messages": {}}


@pytest.mark.both_databases
async def test_the_picked_language_is_stored_per_person(embedded) -> None:
    """user_prefs.language (migration 0013): a pick, kept beside the other defaults; "" back to the app's."""
    from core.errors import InvalidRequest

    prefs = embedded.prefs
    assert (await prefs.get("telegram", "lang-1")).language is None
    await prefs.set("telegram", "lang-1", quality="720")
    assert (await prefs.set("telegram", "lang-1", language="pt_BR")).language == "pt_BR"
    kept = await prefs.get("telegram", "lang-1")
    assert (kept.language, kept.quality) == ("pt_BR", "720")
    assert (await prefs.get("discord", "lang-1")).language is None
    with pytest.raises(InvalidRequest):
        await prefs.set("telegram", "lang-1", language="xx")
    assert (await prefs.set("telegram", "lang-1", language="")).language is None


def test_a_stored_english_sentence_with_values_is_said_in_the_readers_language() -> None:
    """A worker writes a job's error in English with values in it, for readers it does not know; whoever shows
    it finds the catalog sentence by its shape and says it in the reader's language, with the same values."""
    from core.i18n import said
    from core.media.errors import DownloadFailed

    stored = "The site answered 503 Service Unavailable. Please try again later."
    with use("de"):
        assert said(stored) == "Die Seite antwortete 503 Service Unavailable. Versuch es später noch einmal."
        assert said("This media is 2 h long; the limit is 1 h.") == (
            "Dieses Medium dauert 2 h; die Grenze liegt bei 1 h."
        )
        assert said(DownloadFailed().message) == _(DownloadFailed().message) != DownloadFailed().message
        assert said("Something no catalog knows: 42.") == "Something no catalog knows: 42."
    assert said(stored) == stored  # English readers read it as written
