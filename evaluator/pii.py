"""PII scrubbing: replace personal data with typed placeholders before text reaches the judge or the log.

What is replaced, in this order (a placeholder holds no digit, so later patterns never re-match it):

- ``[SECRET]`` PEM private key blocks; API keys and tokens (OpenAI ``sk-``, Hugging Face ``hf_``, GitHub ``ghp_``...,
  AWS ``AKIA``/``ASIA`` and 40-character secret keys, Stripe ``sk_live_``, Google ``AIza``, Slack ``xoxb-``, JWTs);
  the value after "password is", "Passwort:", "pwd =" when it looks like one (a digit, a symbol, inner capitals or
  quotes: "the password is hashed" stays);
- ``[EMAIL]`` e-mail addresses in any script (``josé@correo.es``), and spelled out: ``maria (at) gmail (dot) com``,
  ``maria at gmail dot com``;
- ``[PASSPORT]`` the number after "passport (number)", "Reisepass Nr.", "passeport"... (6-10 letters and digits);
- ``[IBAN]`` IBANs, spaced or not, any case, only when the mod-97 checksum holds;
- ``[CARD]`` payment card numbers of 13-19 digits (spaces, dashes or dotted groups of four), only when the Luhn
  check holds and the first digit is an issuer's (2-6);
- ``[SSN]`` US social security numbers written ``123-45-6789`` or ``123 45 6789`` (invalid area/group/serial
  excluded);
- ``[MAC]`` MAC addresses (``00:1a:2b:3c:4d:5e``);
- ``[IP]`` IPv6 (validated by :mod:`ipaddress`) and IPv4 with valid octets;
- ``[PHONE]`` international numbers (``+44 20 7946 0958``), common national formats (``(555) 123-4567``,
  ``555-123-4567``, ``020 7946 0958``, ``06 12 34 56 78``, ``0171 1234567``), and, validated against
  libphonenumber's numbering plans (the ``phonenumbers`` package), numbers dialled with ``00``
  (``0049 30 12345678``) and North American numbers without separators (``2025550173``).

Near-misses are left alone on purpose: versions (``3.11.7``, ``v2.4.0``), dates (``2024-05-01``, ``01/05/2024``),
times, years, scores (``8/10``), decimals, ``1e-5``, model names (``gpt-4o-mini``), hyperparameters, git hashes,
timestamps and 10-digit ids that are no valid number (``4294967296``).
Names and postal addresses are not detected (that needs NER).

Microsoft Presidio was measured for this: it needs spaCy (about 250 MB installed), its e-mail recognizer tries to
download the public-suffix list at run time, and its pattern recognizers missed dotted cards, lower-case IBANs,
``123 45 6789``, passports and every key format above. Its phone recognizer is libphonenumber, used here directly.
"""

from __future__ import annotations

import ipaddress
import re

_SECRET = re.compile(
    r"(?<![\w-])(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*"  # JWT: base64url JSON header and payload
    r")(?![\w-])"
)
# A PEM private key block (to its END line, or to the end of the text when it was cut).
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)", re.S
)
# A 40-character base64 token mixing cases and digits (an AWS secret access key); git hashes are hex only.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
# "my password is hunter2", "Passwort: Geheim123!": the value when it looks like one (a digit, a symbol or mixed
# case, or quoted), so "the password is hashed" stays.
_PASSWORD = re.compile(
    r"(?i)\b(pass(?:word|wort|phrase|code|e)?|pwd|mot de passe|contrase(?:ñ|n)a|senha|pin)"
    r"(\s*(?:is|was|ist|est|es|é|:|=)\s*)"
    r"(\"[^\"\n]{1,80}\"|'[^'\n]{1,80}'|\S{4,80})"
)
_PASSPORT = re.compile(
    r"(?i)\b(passport|reisepass|passeport|pasaporte|passaporto|paspoort)"
    r"((?:\s*(?:number|no\.?|nr\.?|num(?:ber|éro|ero)?|#|nummer))?\s*(?:is|:|=)?\s*)"
    r"(?-i:(?=[A-Z0-9]*\d)[A-Z0-9]{6,10})\b"
)
# Local part and domain in any script (internationalised addresses: josé@correo.españa.es).
_EMAIL = re.compile(r"(?<![\w.%+-])\w[\w.%+-]*@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}\b")
# Obfuscated: "maria (at) gmail (dot) com", "maria [at] gmail.com", "maria at gmail dot com", "maria @ gmail . com".
_AT = r"(?:\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*|\s+at\s+|\s+@\s*|\s*@\s+)"
_DOT = r"(?:\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*|\s+dot\s+|\s\.\s|\.)"
_OBFUSCATED_EMAIL = re.compile(rf"(?i)(?<![\w.%+-])\w[\w.%+-]*{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}(?:[^\W\d_]{{2,6}})\b")
_IBAN = re.compile(r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# The second lookbehind leaves the body of a failed (mistyped) IBAN alone.
_CARD = re.compile(
    r"(?<![\w.,/-])(?<![A-Za-z]{2}\d{2} )[2-6]\d{3}(?:(?:[ -]?\d){9,15}|(?:\.\d{4}){3}(?:\.\d{1,3})?)(?![\w/-]|[.,]\d)"
)
_SSN = re.compile(r"(?<![\w./-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w/-]|\.\d)")
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
# Numbers the patterns above cannot judge alone, checked with libphonenumber's numbering plans: an international
# number dialled with 00 ("0049 30 12345678") and a North American number written without separators
# ("2025550173", not "4294967296").
_DIALLED = re.compile(r"(?<![\w+./-])(?:00[1-9](?:[ .-]?\(?\d{1,5}\)?){2,6}|(?:1[ .-]?)?[2-9]\d{9})(?![\w/-]|[.,]\d)")
_DIGITS = re.compile(r"\d")
_HAS_CANDIDATE = re.compile(r"[\d@]")
# What a text without digits or "@" needs to hold anything scrubbed: a spelled-out "at", a password's label, a key.
_CUES = (" at ", "(at", "[at", "{at", "<at", "pass", "pwd", "contrase", "senha", "-----begin")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"[ .-]", "", m.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group()


def _iban(m: re.Match[str]) -> str:
    compact = m.group().replace(" ", "").upper()
    # Lower case is accepted too ("de89 3704 ..."), so ask for a mostly numeric account part as real IBANs have.
    if not 15 <= len(compact) <= 34 or sum(ch.isdigit() for ch in compact[4:]) < 8:
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


def _dialled(m: re.Match[str]) -> str:
    import phonenumbers  # Google's libphonenumber metadata: loaded only when a candidate number turns up

    text = m.group()
    digits = "".join(_DIGITS.findall(text))
    number = "+" + digits[2:] if text.startswith("00") else digits
    try:
        parsed = phonenumbers.parse(number, None if number.startswith("+") else "US")
    except phonenumbers.NumberParseException:
        return text
    return "[PHONE]" if phonenumbers.is_valid_number(parsed) else text


def _aws_secret(m: re.Match[str]) -> str:
    text = m.group()
    mixed = any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)
    return "[SECRET]" if mixed else text


def _labelled(placeholder: str) -> object:
    """A replacement keeping a match's label (``password is``) and replacing its value (group 3)."""
    return lambda m: m.group(1) + m.group(2) + placeholder


def _password(m: re.Match[str]) -> str:
    value = m.group(3)
    word = value.rstrip(".,;:!?)]")  # "the password is long." ends a sentence
    quoted = value[0] in "\"'"
    mixed_case = any(c.isupper() for c in word[1:]) and any(c.islower() for c in word)
    looks_secret = any(c.isdigit() or not c.isalnum() for c in word) or mixed_case
    return m.group(1) + m.group(2) + "[SECRET]" if quoted or looks_secret else m.group()


_RULES: tuple[tuple[re.Pattern[str], object], ...] = (
    (_PRIVATE_KEY, "[SECRET]"),
    (_SECRET, "[SECRET]"),
    (_AWS_SECRET, _aws_secret),
    (_PASSWORD, _password),
    (_EMAIL, "[EMAIL]"),
    (_OBFUSCATED_EMAIL, "[EMAIL]"),
    (_PASSPORT, _labelled("[PASSPORT]")),
    (_IBAN, _iban),
    (_CARD, _card),
    (_SSN, "[SSN]"),
    (_MAC, "[MAC]"),
    (_IPV6, _ipv6),
    (_IPV4, _ipv4),
    (_PHONE, _phone),
    (_DIALLED, _dialled),
)


def scrub_pii(text: str) -> str:
    """``text`` with PII replaced by typed placeholders such as ``[EMAIL]``, ``[PHONE]`` or ``[CARD]``."""
    if not text or not (_HAS_CANDIDATE.search(text) or any(cue in text.lower() for cue in _CUES)):
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)  # type: ignore[arg-type]
    return text
