"""Blind index for message search: keyed digests of the words of a message, so that messages can be searched by
word without their text being stored or indexed in clear.

Indexing and querying share one tokenizer:

- Normalisation: NFKC (full-width and compatibility forms, ligatures, half-width kana), case folding (so "ß"
  matches "ss" and Greek final sigma matches sigma), accents folded (NFD, the accent marks dropped, recomposed:
  "résumé" matches "resume", "Ёлка" matches "Елка", Arabic harakat and hamza seats are dropped), invisible
  joiners and soft hyphens dropped, and decimal digits of every script written as ASCII ("٢٠٢٤" is "2024").
  Only the generic combining-accent blocks and the Hebrew and Arabic points are folded: the marks that are
  letters of their script (Indic vowel signs and viramas, Thai vowels and tones, kana voicing) are kept, since
  dropping them would merge different words, not spellings of one word.
- Words: maximal runs of letters and digits, where a combining mark continues the word it follows (Python's
  `\\w` alone would cut "हिन्दी" at every vowel sign). Anything else separates words: spaces, punctuation, "_",
  symbols and emoji (which are never tokens). So "o'neil" gives "neil" and an email address gives its parts.
  One exception for the ATS's most searched words: a word of ASCII letters or digits directly followed by "++"
  or "#" keeps the suffix ("c++", "c#", "notepad++"), otherwise "C++" would index nothing at all.
- Scripts written without spaces (Han, Hiragana, Katakana, Thai) and Hangul runs (Korean attaches particles to
  words, "서울에서") become overlapping bigrams of their characters, or the character itself for a run of one:
  a query that is a substring of the text then has all its bigrams in the text's.
- Tokens shorter than 2 characters are dropped, except the single characters of those scripts; a text gives at
  most `MAX_TOKENS` distinct tokens, the first ones.

A term is `TenantKeys.digest(tenant, "search", token)`: HMAC-SHA256 under the tenant's current `hmac` key, with
the kind length-prefixed in front of the token, so a search term never equals the tenant's email or phone digest
of the same string, and it is tagged with the key version. A query looks every token up under every key version
the tenant still holds, so messages indexed before a key rotation stay searchable until they are re-indexed.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # shared.crypto pulls in the AWS client helpers: an index built per request must not pay that
    from shared.crypto import TenantKeys

SEARCH_KIND = "search"
MAX_TOKENS = 512
_MIN_WORD = 2

# Scripts written without spaces between words, and Hangul. Separators inside these blocks are left out (the
# katakana middle dot, the double hyphen, the spacing voicing marks, Thai punctuation, the baht sign); Thai
# digits become ASCII before tokenizing.
_HAN = (
    "\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002fa1f\U00030000-\U000323af"
)
_KANA = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\U0001b000-\U0001b16f"
_THAI = "\u0e01-\u0e3a\u0e40-\u0e4e"
_HANGUL = "\u1100-\u11ff\u3131-\u318e\ua960-\ua97c\uac00-\ud7a3\ud7b0-\ud7fb"
_NO_SPACE = _HAN + _KANA + _THAI + _HANGUL

# What folding removes after NFD: the generic combining accents (Latin, Greek, Cyrillic, Vietnamese), Hebrew
# points and cantillation, Arabic harakat, hamza above/below, superscript alef and Quranic marks, the Arabic
# tatweel (a stretch, not a letter), and invisible characters that only affect rendering (soft hyphen, zero
# width (non-)joiner, word joiner, byte order mark, variation selectors). The zero-width space is not here: in
# Thai and Khmer it marks a word break, so it stays a separator.
_FOLDED = (
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u0610-\u061a\u0640\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"
    "\u00ad\u200c\u200d\u2060\ufeff\ufe00-\ufe0f\U000e0100-\U000e01ef]"
)
_OTHER_DIGIT = r"(?![0-9])\d"

# One piece per match: a run of a no-space script; an ASCII word with a "++"/"#" suffix (at a word start, not
# followed by more of the same or a letter); a word of letters and digits; or any other single character, which
# either continues the previous word (a combining mark right after it) or separates words.
_PIECE = (
    rf"(?P<run>[{_NO_SPACE}]+)"
    r"|(?P<tech>(?<![^\W_])[a-z0-9]+(?:\+\+|#)(?![^\W_]|[+#]))"
    rf"|(?P<word>[^\W_{_NO_SPACE}]+)"
    r"|(?P<other>\S)"
)


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    """The patterns are compiled on first use, not at import: the piece pattern alone takes about 5 ms to compile,
    which every cold start of a function importing this module would pay."""
    return re.compile(pattern)


def normalise(text: str) -> str:
    """`text` as the index sees it: NFKC, case-folded, accents and invisible joiners dropped, ASCII digits."""
    folded = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    # NFKC again, not NFC: case folding can produce compatibility characters, and Hangul must recompose.
    text = unicodedata.normalize("NFKC", _regex(_FOLDED).sub("", folded))
    if not text.isascii():
        text = _regex(_OTHER_DIGIT).sub(lambda digit: str(unicodedata.decimal(digit.group())), text)
    return text


def tokens(text: str) -> set[str]:
    """The distinct search tokens of `text` (at most `MAX_TOKENS`, the first ones): normalised words of two or
    more characters, and bigrams (or single characters) of the runs of scripts written without spaces."""
    return set(_tokens(text))


def query_tokens(query: str) -> list[str]:
    """The tokens of a search query, in query order and without repeats: a message matches when it holds every
    one. Empty when the query has nothing searchable (only emoji, punctuation, one-letter words): the caller
    must refuse such a query rather than match everything."""
    return list(_tokens(query))


def _tokens(text: str) -> dict[str, None]:
    found: dict[str, None] = {}  # a dict, not a set: it keeps the order, so the cap keeps the first tokens
    for token in _candidates(normalise(text)):
        found[token] = None
        if len(found) >= MAX_TOKENS:
            break
    return found


def _candidates(text: str) -> Iterator[str]:
    for piece, is_run in _pieces(text):
        if is_run:
            if len(piece) == 1:
                yield piece
            else:
                yield from (piece[i : i + 2] for i in range(len(piece) - 1))
        elif len(piece) >= _MIN_WORD:
            yield piece


def _pieces(text: str) -> Iterator[tuple[str, bool]]:
    """(word, False) and (no-space run, True) in text order. A word is held open as a span while combining
    marks and letters keep following it without a gap (spans, not string concatenation: a long word of many
    marks stays linear)."""
    start = end = -1
    for match in _regex(_PIECE).finditer(text):
        kind = match.lastgroup
        adjacent = start >= 0 and match.start() == end
        if adjacent and (kind == "word" or (kind == "other" and unicodedata.category(match.group())[0] == "M")):
            end = match.end()
            continue
        if start >= 0:
            yield text[start:end], False
            start = -1
        if kind == "word":
            start, end = match.span()
        elif kind == "tech":
            yield match.group(), False
        elif kind == "run":
            yield match.group(), True
    if start >= 0:
        yield text[start:end], False


class BlindIndex:
    """Search terms of a tenant's messages: keyed digests of their tokens, never the tokens themselves."""

    def __init__(self, keys: TenantKeys) -> None:
        self._keys = keys

    def terms(self, tenant: str, text: str) -> list[str]:
        """The terms to store with a message: the digest of each token of `text` under the tenant's current
        key, sorted, so the stored list reveals neither the order nor the position of the words."""
        return sorted({self._keys.digest(tenant, SEARCH_KIND, token) for token in _tokens(text)})

    def query(self, tenant: str, query: str) -> list[list[str]]:
        """Per query token, in query order, its digests under every key version the tenant holds: a message
        matches when, for every token, one of that token's digests is among its terms."""
        return [self._keys.candidates(tenant, SEARCH_KIND, token) for token in _tokens(query)]
