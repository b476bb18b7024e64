"""Spreadsheet-safe CSV cells: text that a spreadsheet would run as a formula is written inert, and read back exact.

A cell starting with ``=``, ``+``, ``-``, ``@``, ``|``, ``%``, a tab or a carriage return is a formula (or DDE
command) to Excel, LibreOffice and Google Sheets (OWASP "CSV injection"): a graded answer ``=HYPERLINK(...)`` would
run on the reviewer's machine. Such a cell gets a leading apostrophe, which spreadsheets show as text. A cell that
already starts with an apostrophe gets one more, so :func:`restore` undoes :func:`defuse` exactly and a results file
read back to resume a batch holds the same text. Plain numbers (``-2.5``, ``+3``) are left as they are.

defusedcsv was considered: it misses tab and carriage return, and rewrites ``|`` as ``\\|``, which cannot be
undone when the file is read back.
"""

from __future__ import annotations

import re
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "|", "%", "\t", "\r")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")


def defuse(value: Any) -> Any:
    """``value`` with an apostrophe in front when it is text a spreadsheet would evaluate (or starts with one)."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] == "'" or (value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value)):
        return "'" + value
    return value


def restore(value: Any) -> Any:
    """The text :func:`defuse` was given: one leading apostrophe removed."""
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value
