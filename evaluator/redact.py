"""One place that removes secrets from text before it is shown, logged or stored.

Error messages from servers and libraries may echo what was sent to them: an API key, a Hub token, a URL
with a password in it. Everything that turns such a message into text for a person goes through
:func:`redact` with the secrets it knows of.
"""

from __future__ import annotations

import re

MASK = "***"
# What keys and tokens look like even when we were not told them: OpenAI keys (sk-..., sk-proj-...) and
# Hugging Face tokens (hf_...).
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}")
_TOKEN_LIKE = re.compile(r"\bhf_[A-Za-z0-9]{6,}")
_URL_CREDENTIALS = re.compile(r"//[^/@\s]*@")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with each of ``secrets``, anything shaped like a key or token and URL credentials masked.

    Example::

        >>> redact("bad key sk-abcdef123456 for https://me:pw@host/v1")
        'bad key sk-*** for https://***@host/v1'
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(f"//{MASK}@", text)
    text = _KEY_LIKE.sub(f"sk-{MASK}", text)
    return _TOKEN_LIKE.sub(f"hf_{MASK}", text)
