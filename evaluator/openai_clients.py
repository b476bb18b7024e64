"""OpenAI clients built from settings only, so a key goes to the host it was configured for and nowhere else.

Left to itself, ``openai.OpenAI(base_url=None)`` reads ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``
and ``OPENAI_ADMIN_KEY`` from the process environment, which is not where :mod:`evaluator.config` read its settings
(``.env`` values never reach ``os.environ``). A candidate model built with ``base_url=None`` therefore sent the
gateway key from ``.env`` to api.openai.com. Every client here gets an explicit base URL and key.

:func:`describe_api_error` is the one sentence for a failed call, used by the judge, candidate models and the
Batch API path alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .redact import redact

if TYPE_CHECKING:
    import openai

DEFAULT_BASE_URL = "https://api.openai.com/v1"

ClientT = TypeVar("ClientT")


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the default port filled in: where a key would be sent."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def build_client(cls: type[ClientT], *, base_url: str, api_key: str, **options: Any) -> ClientT:
    """An ``openai.OpenAI``/``AsyncOpenAI`` for ``base_url`` with ``api_key``, taking nothing from the environment."""
    if not base_url:
        raise ValueError("an OpenAI client needs an explicit base_url")
    client = cls(base_url=base_url, api_key=api_key, **options)
    # The client filled these from the process environment: organisation and project headers, the admin key.
    for name in ("organization", "project", "admin_api_key", "webhook_secret"):
        setattr(client, name, None)
    return client


def server_message(exc: openai.APIError, secrets: Iterable[str | None] = ()) -> str:
    """The server's own message in an API error (the ``message`` of its JSON body), secrets masked, <= 300 chars."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return redact(str(message or exc.message), *secrets)[:300]


def describe_api_error(
    exc: Exception,
    *,
    api: str,
    secrets: Iterable[str | None] = (),
    endpoint: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    model: str | None = None,
    key_setting: str = "OPENAI_API_KEY",
) -> str:
    """One sentence saying why a call to ``api`` (e.g. ``"the judge API"``) failed; never a secret.

    Args:
        exc: what the ``openai`` client raised.
        api: how to name the service in the sentence.
        secrets: keys to mask should the server's message echo them.
        endpoint, timeout, retries, model: what the sentence may mention (the client's own retries).
        key_setting: the setting to check when the key is rejected.
    """
    import openai  # only when a call failed: this module is imported where openai may never be needed

    name = api[:1].upper() + api[1:]
    attempts = f"{retries + 1} attempt(s)" if retries is not None else ""
    within = f" within {timeout:g} s" if timeout else ""
    if isinstance(exc, openai.APITimeoutError):
        return f"{name} did not answer{within}" + (f" ({attempts})." if attempts else ".")
    if isinstance(exc, openai.APIConnectionError):
        where = f" at {endpoint}" if endpoint else ""
        return f"Could not connect to {api}{where}" + (f" ({attempts})." if attempts else ".")
    if isinstance(exc, openai.AuthenticationError):
        return f"{name} rejected the API key (401): check {key_setting}."
    if isinstance(exc, openai.PermissionDeniedError):
        return f"{name} refused access" + (f" to model {model!r}" if model else "") + " (403)."
    if isinstance(exc, openai.APIStatusError):
        retried = exc.status_code in (408, 409, 429) or exc.status_code >= 500
        after = f" after {attempts}" if retried and attempts else ""
        return f"{name} returned {exc.status_code}{after}: {server_message(exc, secrets)}"
    return f"The call to {api} failed ({type(exc).__name__})."
