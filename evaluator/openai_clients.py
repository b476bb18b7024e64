"""OpenAI clients built from settings only, so a key goes to the host it was configured for and nowhere else.

Left to itself, ``openai.OpenAI(base_url=None)`` reads ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``
and ``OPENAI_ADMIN_KEY`` from the process environment, which is not where :mod:`evaluator.config` read its settings
(``.env`` values never reach ``os.environ``). A candidate model built with ``base_url=None`` therefore sent the
gateway key from ``.env`` to api.openai.com. Every client here gets an explicit base URL and key.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

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
