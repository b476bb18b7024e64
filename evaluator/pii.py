"""PII scrubbing: replace personal data with typed placeholders before text reaches the judge or the log.

What is replaced, in this order (a placeholder holds no digit, so later patterns never re-match it):

- ``[SECRET]`` API keys and tokens (OpenAI ``sk-``, Hugging Face ``hf_``, GitHub ``ghp_``..., AWS ``AKIA``);
- ``[EMAIL]`` e-mail addresses;
- ``[IBAN]`` IBANs, spaced or not, only when the mod-97 checksum holds;
- ``[CARD]`` payment card numbers of 13-19 digits (spaces or dashes allowed), only when the Luhn check holds
  and the first digit is an issuer's (2-6);
- ``[SSN]`` US social security numbers written ``123-45-6789`` (invalid area/group/serial excluded);
- ``[MAC]`` MAC addresses (``00:1a:2b:3c:4d:5e``);
- ``[IP]`` IPv6 (validated by :mod:`ipaddress`) and IPv4 with valid octets;
- ``[PHONE]`` international numbers (``+44 20 7946 0958``) and common national formats (``(555) 123-4567``,
  ``555-123-4567``, ``020 7946 0958``, ``06 12 34 56 78``, ``0171 1234567``).

Near-misses are left alone on purpose: versions (``3.11.7``, ``v2.4.0``), dates (``2024-05-01``, ``01/05/2024``),
times, years, scores (``8/10``), decimals, ``1e-5``, model names (``gpt-4o-mini``) and hyperparameters.
Names and postal addresses are not detected (that needs NER).
"""

from __future__ import annotations

import ipaddress
import re

_SECRET = re.compile(
    r"(?<![\w-])(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}|AKIA[0-9A-Z]{16})(?![\w-])"
)
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# The second lookbehind leaves the body of a failed (mistyped) IBAN alone.
_CARD = re.compile(r"(?<![\w.,/-])(?<![A-Z]{2}\d{2} )[2-6]\d{3}(?:[ -]?\d){9,15}(?![\w/-]|[.,]\d)")
_SSN = re.compile(r"(?<![\w./-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w/-]|\.\d)")
_MAC = re.compile(r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![\w:-])")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)")
_VERSION_BEFORE = re.compile(r"(?i)(?:version|release|build|v)\s*$")
_PHONE = re.compile(
    r"(?<![\w+./-])(?:"
    # international: +CC then groups, optional (0) or (area)
    r"\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,6}"
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567, 1-800-555-0199
    r"|(?:1[ .-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[.-])\d{3}[ .-]\d{4}"
    # national with trunk 0: 020 7946 0958, 06 12 34 56 78, 0171 1234567, 06.12.34.56.78
    r"|0\d{1,4}(?:[ .-]\d{2,8}){1,4}"
    r"|0\d{9,10}"
    r")(?![\w/-]|[.,]\d)"
)
_DIGITS = re.compile(r"\d")
_HAS_CANDIDATE = re.compile(r"[\d@]")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", m.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group()


def _iban(m: re.Match[str]) -> str:
    compact = m.group().replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return m.group()
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return "[IBAN]" if int(number) % 97 == 1 else m.group()


def _ipv6(m: re.Match[str]) -> str:
    text = m.group()
    # "x[::2]" or "a::b" in code parse as addresses; a real host address has at least three groups.
    groups = sum(2 if "." in part else 1 for part in text.split(":") if part)
    if groups < 3:
        return text
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    return "[IP]"


def _ipv4(m: re.Match[str]) -> str:
    start = m.start()
    if _VERSION_BEFORE.search(m.string, max(0, start - 10), start):
        return m.group()
    return "[IP]"


def _phone(m: re.Match[str]) -> str:
    text = m.group()
    n_digits = len(_DIGITS.findall(text))
    if text.startswith("+"):
        return "[PHONE]" if 8 <= n_digits <= 15 else text
    if text.startswith("0"):
        separators = set(re.findall(r"[ .-]", text))
        # "0.123456789" is a decimal and "030-1234" a range: one lone dot is never a phone.
        if text.count(".") == 1 and separators == {"."}:
            return text
        if len(separators) > 1 or not 9 <= n_digits <= 12:
            return text
    return "[PHONE]"


_RULES: tuple[tuple[re.Pattern[str], object], ...] = (
    (_SECRET, "[SECRET]"),
    (_EMAIL, "[EMAIL]"),
    (_IBAN, _iban),
    (_CARD, _card),
    (_SSN, "[SSN]"),
    (_MAC, "[MAC]"),
    (_IPV6, _ipv6),
    (_IPV4, _ipv4),
    (_PHONE, _phone),
)


def scrub_pii(text: str) -> str:
    """``text`` with PII replaced by typed placeholders such as ``[EMAIL]``, ``[PHONE]`` or ``[CARD]``."""
    if not text or not _HAS_CANDIDATE.search(text):
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)  # type: ignore[arg-type]
    return text
