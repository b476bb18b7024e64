"""Settings: read once from the environment (and an optional ``.env``) into one frozen object.

Each setting is the environment variable of its upper-cased name (see the README); a bad value raises
:class:`ConfigError` naming the variable. Secrets are kept out of ``repr``, and no error
quotes a secret's value (their parser never fails).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .redact import redact

JUDGE_BACKENDS = ("auto", "openai", "offline")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Every knob of the app. Build with :func:`load_settings`; tests build their own."""

    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    master_model_name: str = "gpt-4o-mini"
    master_max_new_tokens: int = 512
    master_temperature: float = 0.2
    data_path: Path = Path("data/Q&A_db_practice.json")
    log_path: Path = Path("data/evaluations_log.jsonl")
    sentiment_model_name: str = "distilbert-base-uncased-finetuned-sst-2-english"
    judge_backend: str = "auto"
    judge_timeout_seconds: float = 30.0
    judge_max_retries: int = 4
    consistency_runs: int = 1
    cache_path: Path = Path("data/judge_cache.sqlite")
    candidate_model_name: str | None = None
    candidate_base_url: str | None = None
    candidate_api_key: str | None = field(default=None, repr=False)
    hf_token: str | None = field(default=None, repr=False)
    hf_log_repo: str | None = None
    hf_push_every_minutes: float = 5.0
    pii_scrubbing: bool = True
    max_answer_chars: int = 4000
    max_comment_chars: int = 2000
    max_question_chars: int = 2000
    max_reference_chars: int = 8000
    rate_limit_per_minute: int = 30
    app_username: str | None = None
    app_password: str | None = field(default=None, repr=False)
    # Cost and abuse controls of a public Space (see docs/security.md); 0 turns a limit off.
    max_batch_rows: int = 200
    allowed_candidate_models: tuple[str, ...] = ()  # empty: CANDIDATE_MODEL_NAME, MASTER_MODEL_NAME, local:smollm2
    judge_calls_per_client_hour: int = 100
    judge_calls_per_day: int = 2000
    max_request_bytes: int = 4_000_000  # the chat sends its whole conversation with each answer
    login_attempts_per_minute: int = 10
    trusted_proxy_hops: int = 0  # X-Forwarded-For entries added by proxies you run; 1 by default on a Space
    shutdown_timeout_seconds: float = 8.0
    gradio_server_name: str = "0.0.0.0"  # the interface python app.py listens on
    gradio_server_port: int = 7860  # its port (PORT, when set, wins: hosts that assign a port set it)

    @property
    def effective_judge_backend(self) -> str:
        """``openai`` or ``offline``: what ``auto`` resolves to (openai when a key is set)."""
        if self.judge_backend == "auto":
            return "openai" if self.openai_api_key else "offline"
        return self.judge_backend

    @property
    def candidate_models(self) -> tuple[str, ...]:
        """Candidate models a visitor may name: ``ALLOWED_CANDIDATE_MODELS``, else the configured ones."""
        if self.allowed_candidate_models:
            return self.allowed_candidate_models
        return tuple(
            dict.fromkeys(m for m in (self.candidate_model_name, self.master_model_name, "local:smollm2") if m)
        )


def _str(name: str, raw: str) -> str:
    return raw.strip()


def _int(low: int, high: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(f"{name} must be {bound}, got {value}")
        return value

    return parse


def _float(low: float, high: float | None = None) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(f"{name} must be {bound}, got {raw.strip()!r}")
        return value

    return parse


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _url(name: str, raw: str) -> str:
    value = raw.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = redact(value)  # credentials in a URL are secrets too
        raise ConfigError(f"{name} must be an http(s) URL such as http://localhost:8000/v1, got {shown!r}")
    return value


def _names(name: str, raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def _path(name: str, raw: str) -> Path:
    return Path(raw.strip())


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "openai_api_key": _str,
    "openai_base_url": _url,
    "master_model_name": _str,
    "master_max_new_tokens": _int(1, 16384),
    "master_temperature": _float(0.0, 2.0),
    "data_path": _path,
    "log_path": _path,
    "sentiment_model_name": _str,
    "judge_backend": _choice(*JUDGE_BACKENDS),
    "judge_timeout_seconds": _float(0.1),
    "judge_max_retries": _int(0, 20),
    "consistency_runs": _int(1, 10),
    "cache_path": _path,
    "candidate_model_name": _str,
    "candidate_base_url": _url,
    "candidate_api_key": _str,
    "hf_token": _str,
    "hf_log_repo": _str,
    "hf_push_every_minutes": _float(0.05),
    "pii_scrubbing": _bool,
    "max_answer_chars": _int(1),
    "max_comment_chars": _int(1),
    "max_question_chars": _int(1),
    "max_reference_chars": _int(1),
    "rate_limit_per_minute": _int(0),
    "app_username": _str,
    "app_password": _str,
    "max_batch_rows": _int(0),
    "allowed_candidate_models": _names,
    "judge_calls_per_client_hour": _int(0),
    "judge_calls_per_day": _int(0),
    "max_request_bytes": _int(1024),
    "login_attempts_per_minute": _int(0),
    "trusted_proxy_hops": _int(0, 10),
    "shutdown_timeout_seconds": _float(0.5, 600),
    "gradio_server_name": _str,
    "gradio_server_port": _int(1, 65535),
}


def env_name(field_name: str) -> str:
    """The environment variable that sets ``field_name`` (``master_temperature`` -> ``MASTER_TEMPERATURE``)."""
    return field_name.upper()


# A Hugging Face Space's persistent storage, mounted here when the owner enables it (survives restarts and rebuilds).
SPACE_STORAGE = Path("/data")


def _space_storage(values: Mapping[str, str], storage: Path) -> Path | None:
    """``storage`` when running on a Space (``SPACE_ID`` set) and that folder exists and is writable, else None."""
    if not values.get("SPACE_ID", "").strip():
        return None
    return storage if storage.is_dir() and os.access(storage, os.W_OK | os.X_OK) else None


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    dotenv_path: str | Path | None = ".env",
    space_storage: Path = SPACE_STORAGE,
) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over values in ``dotenv_path``.

    Real environment variables win over the ``.env`` file. On a Space with persistent storage
    (``space_storage`` writable), ``LOG_PATH`` and ``CACHE_PATH`` default to files in it. Raises
    :class:`ConfigError` naming the first bad variable.
    """
    values: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        from dotenv import dotenv_values

        try:
            dotenv = dotenv_values(dotenv_path)
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{dotenv_path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
        values.update({k: v for k, v in dotenv.items() if v is not None})
    values.update(os.environ if environ is None else environ)
    kwargs: dict[str, Any] = {}
    storage = _space_storage(values, space_storage)
    if storage is not None:
        kwargs.update(log_path=storage / "evaluations_log.jsonl", cache_path=storage / "judge_cache.sqlite")
    for f in fields(Settings):
        name = env_name(f.name)
        # An empty value (``KEY=`` in .env) means "use the default".
        if values.get(name, "").strip():
            kwargs[f.name] = _PARSERS[f.name](name, values[name])
    if values.get("PORT", "").strip():
        kwargs["gradio_server_port"] = _PARSERS["gradio_server_port"]("PORT", values["PORT"])
    if "trusted_proxy_hops" not in kwargs and values.get("SPACE_ID", "").strip():
        kwargs["trusted_proxy_hops"] = 1  # the Space's proxy appends the client's address to X-Forwarded-For
    settings = Settings(**kwargs)
    if settings.judge_backend == "openai" and not settings.openai_api_key:
        raise ConfigError("JUDGE_BACKEND=openai needs OPENAI_API_KEY to be set")
    if bool(settings.app_username) != bool(settings.app_password):
        raise ConfigError("APP_USERNAME and APP_PASSWORD must be set together")
    if settings.hf_log_repo and not settings.hf_token:
        raise ConfigError("HF_LOG_REPO needs HF_TOKEN to be set (a write token for the dataset repo)")
    return settings
