"""Request bodies: JSON read without letting its shape reach the parser's recursion.

Python's json parser recurses once per nested array or object, so a body of a few thousand brackets (well
under the body limit) ends in a RecursionError. The nesting is measured first by a linear scan, and a body
deeper than any request of ours needs is refused before it is parsed.
"""

from __future__ import annotations

import json
import re

from core.errors import InvalidRequest
from core.i18n import N_, _

# The API's bodies nest two deep ({"subtitles": ["en"]}); a little room for what a client may add.
MAX_DEPTH = 16
# A whole string (escapes included), an unterminated string's opening quote, or one bracket. Possessive,
# so a string costs one pass and never backtracks.
_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"|"|[\[\]{}]', re.DOTALL)
EXAMPLE = '{"url": "https://..."}'


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays and objects in `text`, counting brackets outside strings; stops
    counting once past `limit` (the caller only needs to know it is too deep)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token == '"':
            break  # a string that never ends: the rest is its text (and the parser refuses it)
        if len(token) != 1:
            continue  # a string: brackets inside it are text
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def json_object(raw: bytes) -> dict[str, object]:
    """`raw` as a JSON object, or InvalidRequest (400) in one sentence, whatever the bytes are."""
    try:
        text = raw.decode("utf-8")  # JSON between systems is UTF-8 (RFC 8259); no guessing at others
    except UnicodeDecodeError:
        raise InvalidRequest(N_("The body is not UTF-8 text: send JSON in UTF-8.")) from None
    if nesting_depth(text) > MAX_DEPTH:
        raise InvalidRequest(
            _("The body nests too deeply: send a JSON object such as {example}.").format(example=EXAMPLE)
        )
    try:
        data = json.loads(text or "null")
    except (ValueError, RecursionError):  # RecursionError: never, after the depth check; kept as a guard
        raise InvalidRequest(N_("The body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise InvalidRequest(_("The body must be a JSON object such as {example}.").format(example=EXAMPLE))
    return data
