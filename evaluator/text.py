"""Word-level text helpers: stopwords and light stemming (offline judge, dataset search), plurals (messages)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

# Function words carry no content; negations (no, not, nor) are kept because they flip the meaning.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each either etc few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just let may me might
    more most must my myself now of off on once only or other our ours ourselves out over own
    per same shall she should so some such than that the their theirs them themselves then there these they this
    those through thus to too under until up upon us very via was we were what when where whether which while who
    whom whose why will with within without would yet you your yours yourself yourselves""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z0-9]+")


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light suffix-stripping stem (plurals, -ing, -ed, -ly), enough to match word forms."""
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("ly", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith(("ss", "us", "is")):
            return word[: -len(suffix)] + keep
    return word


def content_terms(words: Sequence[str]) -> list[str | None]:
    """The stem of each word that carries content, ``None`` for stopwords and punctuation."""
    return [stem(w) if w.isalnum() and w not in STOPWORDS else None for w in (w.lower() for w in words)]


def content_words(text: str) -> set[str]:
    """The distinct content stems of ``text`` (stopwords dropped)."""
    return {t for t in content_terms(_WORD.findall(text)) if t}


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` agreeing: ``1 item``, ``3 items``, ``2 categories`` (``many`` for other plurals)."""
    if n == 1:
        return f"{n} {word}"
    if many is None:
        consonant_y = word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u")
        many = word[:-1] + "ies" if consonant_y else word + "s"
    return f"{n} {many}"
