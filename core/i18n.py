"""Every sentence in the person's own language: gettext catalogs (core/locales/<lang>/LC_MESSAGES/mediabot.po)
read with Babel on first use, and the current person's locale in a context variable.

The text functions (bots/*/texts.py, core/words.py) keep their signatures: a handler sets the locale at its
entry (`use(code)`), a delivery that edits messages later sets the locale stored with its request, and `_()`
reads it. asyncio tasks copy the context they were created in, so a task a handler spawns speaks the same
language. A sentence a catalog lacks (or has empty) is said in English, alone.

    python -m core.i18n extract   # refresh core/locales/mediabot.pot and merge it into every .po
    python -m core.i18n check     # what each catalog lacks, and placeholders that differ
"""

from __future__ import annotations

import gettext
import html
import io
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import datetime
from pathlib import Path
from typing import Any

ENGLISH = "en"
# English first: the source language, and the one anything unknown falls back to.
LOCALES = ("en", "es", "pt_BR", "ru", "uk", "de", "fr", "tr", "id", "fa", "ar")
RTL = frozenset({"fa", "ar"})
# The names people pick from, in their own language (/language, the page's picker).
NAMES = {
    "en": "English",
    "es": "Español",
    "pt_BR": "Português (Brasil)",
    "ru": "Русский",
    "uk": "Українська",
    "de": "Deutsch",
    "fr": "Français",
    "tr": "Türkçe",
    "id": "Bahasa Indonesia",
    "fa": "فارسی",
    "ar": "العربية",
}
DOMAIN = "mediabot"
LOCALE_DIR = Path(__file__).with_name("locales")
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"

_current: ContextVar[str] = ContextVar("mediabot_locale", default=ENGLISH)
_loaded: dict[str, gettext.NullTranslations] = {}
_lock = threading.Lock()


# -- which language ----------------------------------------------------------------------------------------


def _canonical(code: str) -> str:
    """ "pt-br", "PT_BR", "pt_BR.UTF-8" -> "pt_BR"; "RU" -> "ru"."""
    code = code.strip().split(".", 1)[0].split(";", 1)[0].replace("-", "_")
    lang, _sep, region = code.partition("_")
    return f"{lang.lower()}_{region.upper()}" if region else lang.lower()


def supported(code: str | None) -> str | None:
    """The locale we ship for a language code (exact, or by language: "es-MX" -> "es", "pt" -> "pt_BR"),
    None when we have none."""
    if not code or not code.strip():
        return None
    code = _canonical(code)
    if code in LOCALES:
        return code
    lang = code.split("_", 1)[0]
    return next((loc for loc in LOCALES if loc.split("_", 1)[0] == lang), None)


def negotiate(*codes: str | None) -> str:
    """The first of the person's codes (best first) we speak; English when none is."""
    for code in codes:
        found = supported(code)
        if found is not None:
            return found
    return ENGLISH


def accept_language(header: str | None) -> list[str]:
    """An Accept-Language header's codes, best first ("fa-IR,fa;q=0.9,en;q=0.5" -> ["fa-IR", "fa", "en"])."""
    ranked = []
    for n, part in enumerate((header or "").split(",")):
        code, _sep, params = part.strip().partition(";")
        if not code or code == "*":
            continue
        weight = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                weight = float(match.group(1))
            except ValueError:
                continue
        if weight > 0:
            ranked.append((-weight, n, code.strip()))
    return [code for _w, _n, code in sorted(ranked)]


def terminal_languages(environ: dict[str, str] | None = None) -> list[str]:
    """A terminal's languages, best first, as gettext reads them ("C" and "POSIX" say none)."""
    import os

    env = os.environ if environ is None else environ
    found: list[str] = []
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        for code in (env.get(name) or "").split(":"):
            if code and code.split(".", 1)[0] not in ("C", "POSIX"):
                found.append(code)
    return found


def current() -> str:
    return _current.get()


def set_locale(code: str | None) -> Token[str]:
    """Speak `code` (negotiated; English when unknown) from here on in this context."""
    return _current.set(negotiate(code))


@contextmanager
def use(code: str | None) -> Iterator[str]:
    token = set_locale(code)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def is_rtl(locale: str | None = None) -> bool:
    return (locale or current()) in RTL


# -- catalogs ----------------------------------------------------------------------------------------------


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(locale: str) -> Any:
    """The Babel catalog of one locale, read from its .po."""
    from babel.messages.pofile import read_po

    with po_path(locale).open("rb") as fh:
        return read_po(fh, locale=locale, domain=DOMAIN)


def translations(locale: str) -> gettext.NullTranslations:
    """A locale's compiled catalog (compiled in memory from the .po on first use: no binary files in git);
    English and unknown locales get the identity."""
    found = _loaded.get(locale)
    if found is not None:
        return found
    with _lock:
        found = _loaded.get(locale)
        if found is None:
            found = _compile(locale)
            _loaded[locale] = found
    return found


def _compile(locale: str) -> gettext.NullTranslations:
    if locale == ENGLISH or locale not in LOCALES or not po_path(locale).exists():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo

    buf = io.BytesIO()
    write_mo(buf, read_catalog(locale))  # untranslated and fuzzy entries are left out: English for those
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def _warm(locale: str) -> None:
    translations(locale)
    if locale != ENGLISH and locale in LOCALES:
        _decimal(locale)  # loads Babel's data for the locale too


async def ready(locale: str) -> str:
    """`locale`'s catalog compiled (and its number symbols loaded) in a thread the first time, so the event
    loop never parses a .po (16-80 ms); `locale` back, for `set_locale(await ready(...))`."""
    if locale not in _loaded or (locale != ENGLISH and locale not in _decimals):
        import asyncio

        await asyncio.to_thread(_warm, locale)
    return locale


def preload(locales: Iterable[str] = LOCALES) -> None:
    """Compile every catalog now (at start, in a thread), so no first sentence pays for it."""
    for locale in locales:
        translations(locale)


def _(message: str) -> str:
    """`message` in the current person's language."""
    locale = _current.get()
    if locale == ENGLISH:
        return message
    return translations(locale).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for `n` in the current language (Russian has three, Arabic six)."""
    locale = _current.get()
    if locale == ENGLISH:
        return singular if n == 1 else plural
    return translations(locale).ngettext(singular, plural, n)


def said(message: str) -> str:
    """A sentence made earlier, elsewhere, in English (a job's stored error, written by a worker that knew no
    reader): `_()` when it is a fixed sentence; when values were put into one of the catalogs' sentences
    ("The site answered {code} {reason}..."), that sentence is found by its shape and said in the current
    language with the same values. Anything else stays as it was."""
    locale = _current.get()
    if locale == ENGLISH or not message:
        return message
    catalog = translations(locale)
    found = catalog.gettext(message)
    if found != message:
        return found
    for shape, msgid in _shapes(locale):
        match = shape.fullmatch(message)
        if match is None:
            continue
        translated = catalog.gettext(msgid)
        if translated == msgid:
            return message
        try:
            return translated.format(**match.groupdict())
        except (KeyError, IndexError, ValueError):
            return message
    return message


_shapes_by_locale: dict[str, list[tuple[re.Pattern[str], str]]] = {}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _shapes(locale: str) -> list[tuple[re.Pattern[str], str]]:
    """The locale's translated sentences that take values, as patterns (longest first: the most specific)."""
    found = _shapes_by_locale.get(locale)
    if found is not None:
        return found
    catalog = translations(locale)
    ids = [key for key in getattr(catalog, "_catalog", {}) if isinstance(key, str) and "{" in key]
    shapes = []
    for msgid in sorted(ids, key=len, reverse=True):
        parts, seen, at = [], set(), 0
        for placeholder in _PLACEHOLDER.finditer(msgid):
            parts.append(re.escape(msgid[at : placeholder.start()]))
            name = placeholder.group(1)
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
            at = placeholder.end()
        if not seen:
            continue
        parts.append(re.escape(msgid[at:]))
        shapes.append((re.compile("".join(parts), re.DOTALL), msgid))
    _shapes_by_locale[locale] = shapes
    return shapes


def N_(message: str) -> str:
    """Marks a sentence for the catalogs without translating it (module constants, translated where used)."""
    return message


def translate_in(locale: str, message: str) -> str:
    with use(locale):
        return _(message)


# -- numbers and dates -------------------------------------------------------------------------------------


def number(value: float, fmt: str = "#,##0.#") -> str:
    """A number as the current locale writes it (1.5 in English, 1,5 in German; latin digits everywhere)."""
    locale = _current.get()
    simple = _SIMPLE_NUMBERS.get(fmt)
    if simple is not None:
        # The patterns sizes and durations use: Python's formatting with the locale's decimal sign, the same
        # as Babel writes them (latin digits) at a fraction of its cost (checked in tests/core/test_i18n.py).
        text = simple(value)
        return text if locale == ENGLISH else text.replace(".", _decimal(locale))
    pattern, babel_locale = _pattern(fmt), _babel(locale)
    return str(pattern.apply(value, babel_locale))


_decimals: dict[str, str] = {}


def _decimal(locale: str) -> str:
    found = _decimals.get(locale)
    if found is None:
        from babel.numbers import get_decimal_symbol

        found = _decimals[locale] = get_decimal_symbol(_babel(locale))
    return found


# The patterns sizes and durations use, written with Python (English as it always was here) and the decimal sign.
_SIMPLE_NUMBERS = {
    "0": lambda v: str(int(v)),
    "00": lambda v: f"{int(v):02d}",
    "0.#": lambda v: f"{v:.1f}".removesuffix(".0"),
}
_patterns: dict[str, Any] = {}
_locales: dict[str, Any] = {}


def _pattern(fmt: str) -> Any:
    found = _patterns.get(fmt)
    if found is None:
        from babel.numbers import parse_pattern

        found = _patterns[fmt] = parse_pattern(fmt)
    return found


def _babel(locale: str) -> Any:
    found = _locales.get(locale)
    if found is None:
        from babel import Locale

        found = _locales[locale] = Locale.parse(locale)
    return found


def when(moment: datetime, fmt: str = "short") -> str:
    """A date and time as the current locale writes it ("12/7/26, 10:30 PM", "07.12.2026, 22:30")."""
    if _current.get() == ENGLISH:
        return f"{moment:%Y-%m-%d %H:%M}"  # as English has always been written here
    from babel.dates import format_datetime

    return format_datetime(moment, fmt, tzinfo=moment.tzinfo, locale=_babel(_current.get()))


# -- the web page's catalog --------------------------------------------------------------------------------


def web_catalog(locale: str) -> dict[str, Any]:
    """A locale's sentences for the page (GET /i18n/<lang>.json): {msgid: text} and, for plurals,
    {msgid: {CLDR category: text}} so the page picks with Intl.PluralRules. Only translated entries; the page
    keeps its English for the rest."""
    from babel import Locale

    locale = supported(locale) or ENGLISH
    messages: dict[str, Any] = {}
    if locale != ENGLISH and po_path(locale).exists():
        catalog = read_catalog(locale)
        rule = gettext.c2py(catalog.plural_expr)
        plural_form = Locale.parse(locale).plural_form
        # Which CLDR category each gettext index stands for, from samples.
        categories: dict[int, str] = {}
        for n in range(0, 200):
            categories.setdefault(int(rule(n)), plural_form(n))
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            if isinstance(message.id, tuple):
                forms = {categories[i]: s for i, s in enumerate(message.string) if s and i in categories}
                if forms:
                    messages[message.id[0]] = forms
            elif message.string:
                messages[message.id] = message.string
    return {"locale": locale, "dir": "rtl" if locale in RTL else "ltr", "messages": messages}


# -- maintenance: extract, check ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("core", "bots", "web", "mediabot", "worker")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "translate_in": (2,)}
# The page: t("..."), tn("one", "many", n) in web/static/*.js; data-i18n="..." in web/static/*.html.
JS_KEYWORDS = {"t": None, "tn": (1, 2)}
HTML_ATTR = re.compile(r'data-i18n(?:-[a-z]+)?="([^"]+)"')


def extract() -> Any:
    """Every marked sentence of the code and the page, as a Babel catalog (the English template)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    catalog = Catalog(project="mediabot", domain=DOMAIN, charset="utf-8", fuzzy=False)
    for folder in SOURCES:
        found = extract_from_dir(
            ROOT / folder,
            method_map=[("**/static/**.js", "javascript"), ("**.py", "python")],
            keywords={**KEYWORDS, **JS_KEYWORDS},
            comment_tags=("i18n:",),
            strip_comment_tags=True,
        )
        for filename, lineno, message, comments, context in found:
            where = (f"{folder}/{filename}", lineno)
            catalog.add(message, None, [where], auto_comments=comments, context=context)
    for page in sorted((ROOT / "web" / "static").glob("*.html")):
        for lineno, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for match in HTML_ATTR.finditer(line):
                text = html.unescape(match.group(1))
                catalog.add(text, None, [(f"web/static/{page.name}", lineno)])
    return catalog


def update() -> None:
    """Write the template and merge it into every locale's catalog (new sentences empty, gone ones dropped)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    template = extract()
    with TEMPLATE.open("wb") as fh:
        write_po(fh, template, width=120, omit_header=False, sort_output=True)
    for locale in LOCALES[1:]:
        path = po_path(locale)
        catalog = read_catalog(locale) if path.exists() else Catalog(locale=locale, domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=120, sort_output=True, ignore_obsolete=True)


PLACEHOLDER = re.compile(r"\{[a-zA-Z_][a-zA-Z0-9_]*\}|%\([a-zA-Z_]+\)[sd]|%[sd]")


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def problems(locale: str, template: Any | None = None) -> list[str]:
    """What a catalog lacks against the template, and where its placeholders or plural count differ."""
    from babel.messages.pofile import read_po

    if template is None:
        with TEMPLATE.open("rb") as fh:
            template = read_po(fh)
    catalog = read_catalog(locale)
    found: list[str] = []
    for message in template:
        if not message.id:
            continue
        own = catalog.get(message.id)
        key = message.id if isinstance(message.id, str) else message.id[0]
        if own is None or own.fuzzy:
            found.append(f"{locale}: missing {key!r}")
            continue
        strings = own.string if isinstance(own.string, tuple) else (own.string,)
        if isinstance(message.id, tuple) and len(strings) != catalog.num_plurals:
            found.append(f"{locale}: {key!r} has {len(strings)} plural forms, not {catalog.num_plurals}")
        if not all(strings):
            found.append(f"{locale}: untranslated {key!r}")
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set(placeholders(ids[-1])) | set(placeholders(ids[0]))
        for text in strings:
            have = set(placeholders(text))
            # Every form keeps the number: Russian's "one" form also says 21 and 31.
            if have != wanted:
                found.append(f"{locale}: placeholders of {key!r} differ: {sorted(have)} != {sorted(wanted)}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "check"
    if command == "extract":
        update()
        print(f"wrote {TEMPLATE.relative_to(ROOT)} and {len(LOCALES) - 1} catalogs")
        return 0
    if command == "check":
        found = [line for locale in LOCALES[1:] for line in problems(locale)]
        print("\n".join(found) or "every catalog is complete")
        return 1 if found else 0
    print("usage: python -m core.i18n extract|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
