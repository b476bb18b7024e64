"""Text that enters the evaluator: one check for every field a person or a file supplies, and the defusing of
markup in text the judge reads as data (:func:`defuse_markup`).

:func:`check_text` is called wherever text comes in (answers, comments, free-form questions and references,
ids and labels of batch rows and datasets, the JSON API's parameters). It turns what would fail later, deep in
the judge call or the log write, into an :class:`InputError` naming the field:

- a lone UTF-16 surrogate (JSON ``"\\ud800"``): not a Unicode character, it cannot be encoded as UTF-8, so the
  HTTP request to the judge and the log line could never be written;
- text longer than the field's limit.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from .errors import InputError

# Ids, categories and difficulties: short labels.
MAX_LABEL_CHARS = 200
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(value: str, name: str, *, limit: int | None = None) -> str:
    """``value`` unchanged, or :class:`InputError` if it is longer than ``limit`` or is not valid Unicode text.

    ``name`` is the field as a person knows it ("answer", "reference"...); the message never repeats the value.
    """
    if limit is not None and len(value) > limit:
        raise InputError(f"The {name} is {len(value):,} characters long; the limit is {limit:,}.")
    if not value.isascii():
        bad = _SURROGATE.search(value)
        if bad is not None:
            raise InputError(
                f"The {name} holds an invalid character at position {bad.start() + 1} "
                f"(a lone surrogate, U+{ord(bad.group()):04X}): it is not valid Unicode text."
            )
    return value


def api_text(value: Any, name: str) -> str:
    """A text parameter of the JSON API: JSON ``null`` is empty; a number, list or object is an :class:`InputError`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, got {type(value).__name__} {str(value)[:40]!r}.")
    return check_text(value, name)


# -- defusing markup in text the judge reads as data ----------------------------------------------------------------
# Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt): invisible characters that render as
# nothing: zero-width spaces, bidi controls and isolates, variation selectors, the combining grapheme joiner, tag
# characters (which some models read as hidden ASCII), fillers. The two joiners ZWNJ and ZWJ (U+200C, U+200D) stay
# in the text: Persian and Indic spelling and emoji sequences need them (they still never hide a delimiter: see
# _skeleton).
_IGNORABLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164"
    "\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_INVISIBLE = re.compile(f"(?![\u200c\u200d])[{_IGNORABLE}]")
_SKIPPED = re.compile(f"[{_IGNORABLE}]")
# Chat-template control tokens of common model families: ChatML and Llama 3 <|...|>, Llama 2 [INST] and <<SYS>>,
# sentence markers <s> </s>, Gemma <start_of_turn>. Matched in the skeleton (lower case, look-alikes folded).
_TEMPLATE_TOKENS = r"<\s*\||\[\s*/?\s*inst\s*\]|<\s*/?\s*sys\s*>|<\s*/?\s*s\s*>|<\s*(?:start|end)_of_turn"
_ESCAPES = {"<": "&lt;", "[": "&#91;"}


@functools.cache
def _ascii_lookalikes() -> dict[str, str]:
    """Each character that Unicode's confusables data says looks like one printable ASCII character, to that one."""
    from confusable_homoglyphs import confusables

    table: dict[str, str] = {}
    for char, glyphs in confusables.confusables_data.items():
        if len(char) == 1 and not char.isascii():
            ascii_glyph = next((g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii()), None)
            if ascii_glyph is not None and ascii_glyph.isprintable():
                table[char] = ascii_glyph
    return table


def _skeleton(text: str) -> tuple[str, list[int]]:
    """``text`` folded for matching markup, and the index in ``text`` of each folded character.

    Each character is NFKC-normalised (full-width and compatibility forms: ``＜`` ``／`` -> ``<`` ``/``), lower-cased
    and mapped to the ASCII character it is confusable with (Cyrillic ``а`` -> ``a``, ``∕`` -> ``/``: Unicode's
    confusables data); invisible characters and combining marks are skipped. The text itself is never changed by this.
    """
    if text.isascii():
        return text.lower(), list(range(len(text)))
    lookalikes = _ascii_lookalikes()
    folded: list[str] = []
    where: list[int] = []
    for i, char in enumerate(text):
        if char.isascii():
            folded.append(char.lower())
            where.append(i)
            continue
        if _SKIPPED.match(char) or unicodedata.category(char) == "Mn":
            continue
        for part in unicodedata.normalize("NFKC", char):
            lower = part.lower()  # Cyrillic І -> і -> i (its capital is listed as confusable with l)
            part = (lookalikes.get(lower) or lookalikes.get(part) or lower).lower()
            folded.append(part)
            where.extend([i] * len(part))
    return "".join(folded), where


@functools.cache
def _markup(names: tuple[str, ...]) -> re.Pattern[str]:
    tags = "|".join(re.escape(n.lower()) for n in names)
    return re.compile(rf"<(?=\s*/?\s*(?:{tags})\b)|{_TEMPLATE_TOKENS}")


def defuse_markup(text: str, delimiters: Sequence[str]) -> str:
    """``text`` with invisible characters removed and anything that reads as markup to a model defused.

    Defused: an opening or closing tag of one of ``delimiters`` (``</answer>``, ``< /ANSWER >``, ``＜/answer>``,
    ``<∕answer>``, ``</аnswer>`` in Cyrillic, split by a zero-width joiner...) and chat-template control tokens
    (``<|im_start|>``, ``[INST]``, ``<<SYS>>``, ``</s>``, ``<start_of_turn>``): their first character becomes
    ``&lt;`` or ``&#91;``, whatever look-alike it was written with. Everything else is left as written.
    """
    text = _INVISIBLE.sub("", text)
    folded, where = _skeleton(text)
    starts = {where[m.start()] for m in _markup(tuple(delimiters)).finditer(folded)}
    if not starts:
        return text
    out = list(text)
    for i in starts:
        out[i] = _ESCAPES.get(_skeleton(text[i])[0][:1], "&lt;")
    return "".join(out)
