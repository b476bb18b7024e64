"""Text that enters the evaluator: one check for every field a person or a file supplies.

:func:`check_text` is called wherever text comes in (answers, comments, free-form questions and references,
ids and labels of batch rows and datasets, the JSON API's parameters). It turns what would fail later, deep in
the judge call or the log write, into an :class:`InputError` naming the field:

- a lone UTF-16 surrogate (JSON ``"\\ud800"``): not a Unicode character, it cannot be encoded as UTF-8, so the
  HTTP request to the judge and the log line could never be written;
- text longer than the field's limit.
"""

from __future__ import annotations

import re
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
