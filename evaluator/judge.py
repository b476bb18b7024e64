"""The OpenAI judge: rubric grading through any OpenAI-compatible chat-completions API.

The prompt and the parser of its replies live in :mod:`evaluator.judge_prompt`. Replies are asked for as
strict JSON-schema structured output; a server that rejects that is asked for JSON mode instead
(then for plain prompted JSON), and the judge remembers it. Retries on 429/5xx/timeouts, with
exponential backoff, jitter and Retry-After, are the ``openai`` client's own (``max_retries``,
``timeout``). A reply that is not a valid grade is asked for again, then reported as an error:
the judge never invents or clamps a score.

Requests go through the client's plain ``post`` (its retries, timeouts, auth and typed errors) and the reply
body is read with orjson: building and validating the typed request and ``ChatCompletion`` objects took about
a third of the client's CPU per call, which a batch of concurrent calls on one event loop waits for.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import statistics
import threading
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2
import openai
import orjson

from .cache import CacheEntry, GradeCache, cache_key
from .errors import ConfigError
from .judge_prompt import JudgePrompt, completion_grade
from .models import Consistency, Grade, GradeRequest, JudgeResult, Status, Usage
from .openai_clients import DEFAULT_BASE_URL, build_client, describe_api_error, server_message
from .pricing import reply_usage

if TYPE_CHECKING:
    from .config import Settings

logger = logging.getLogger(__name__)

# Reply formats, best first: a server that rejects one is asked for the next.
REPLY_FORMATS = ("json_schema", "json_object", "prompt")
CHAT_COMPLETIONS = "/chat/completions"


def _decoded(raw: bytes) -> Any:
    """A response body as JSON, or None when it is not JSON (then it is no grade, see :func:`completion_grade`)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


async def _close_when_loop_ends(client: openai.AsyncOpenAI) -> AsyncIterator[None]:
    """Parked at its ``yield``; ``asyncio.run`` closes pending async generators before closing the loop.

    So a per-loop client closes its connections on its own loop, instead of being garbage-collected
    later while another loop runs (which makes httpx try to close it there).
    """
    try:
        yield
    finally:
        await client.close()


@dataclass(frozen=True)
class _Run:
    """One grading run: a grade or an error reason, and the tokens it spent (failed attempts too)."""

    grade: Grade | None
    error: str | None
    usage: Usage


class OpenAIJudge:
    """Grades answers with a chat model behind the OpenAI API or any OpenAI-compatible server.

    Args:
        model: the judge model (``MASTER_MODEL_NAME``).
        max_tokens: reply token limit (``MASTER_MAX_NEW_TOKENS``).
        temperature: sampling temperature (``MASTER_TEMPERATURE``).
        timeout: seconds per HTTP attempt (``JUDGE_TIMEOUT_SECONDS``).
        max_retries: client retries on 429/5xx/timeouts (``JUDGE_MAX_RETRIES``).
        base_url: an OpenAI-compatible endpoint, e.g. vLLM's ``http://host:8000/v1`` (``OPENAI_BASE_URL``);
            default OpenAI's own (never read from the process environment).
        api_key: the API key (``OPENAI_API_KEY``); never logged or shown.
        client, async_client: injected ``openai.OpenAI`` / ``openai.AsyncOpenAI`` clients.
        cache: a :class:`GradeCache`; None disables caching.
        consistency_runs: grade k times and report the spread (``CONSISTENCY_RUNS``).
        reply_retries: fresh calls after a reply that is not a valid grade.
        concurrency: parallel calls in :meth:`grade_many`.
        prompt: the :class:`JudgePrompt` (default ``prompts/judge_v1.json``).

    Example::

        judge = OpenAIJudge(model="gpt-4o-mini", api_key=key, cache=GradeCache("cache.sqlite"))
        result = judge.grade(GradeRequest(question="2+2?", reference="4", answer="four"))
    """

    backend = "openai"
    grades_in_chunks = False  # one HTTP request per answer, sent concurrently

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        max_tokens: int = 512,
        temperature: float = 0.2,
        timeout: float = 30.0,
        max_retries: int = 4,
        base_url: str | None = None,
        api_key: str | None = None,
        client: openai.OpenAI | None = None,
        async_client: openai.AsyncOpenAI | None = None,
        cache: GradeCache | None = None,
        consistency_runs: int = 1,
        reply_retries: int = 2,
        concurrency: int = 8,
        prompt: JudgePrompt | None = None,
    ) -> None:
        if consistency_runs < 1:
            raise ValueError(f"consistency_runs must be at least 1, got {consistency_runs}")
        if reply_retries < 0 or max_retries < 0:
            raise ValueError(f"retries must be >= 0, got reply_retries={reply_retries}, max_retries={max_retries}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if client is None and async_client is None and not api_key:
            raise ConfigError("The OpenAI judge needs an API key: set OPENAI_API_KEY (any value for a local server).")
        template = client or async_client
        if template is not None:  # build the other client like the injected one
            base_url, api_key = str(template.base_url), template.api_key
            timeout, max_retries = getattr(template.timeout, "read", template.timeout), template.max_retries
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout = timeout
        self.max_retries = max_retries
        self.cache = cache
        self.consistency_runs = consistency_runs
        self.reply_retries = reply_retries
        self.concurrency = concurrency
        self.prompt = prompt or JudgePrompt.load()
        self.prompt_version = self.prompt.version
        self._options: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url or DEFAULT_BASE_URL,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        self._secret = api_key or ""
        # One TLS context for every client this judge builds: making one reads the CA bundle (~25 ms), and each
        # event loop (each batch run) needs an async client of its own. The context is httpx2's default one.
        self._tls: ssl.SSLContext | None = None
        if client is None or async_client is None:
            self._tls = httpx2.create_ssl_context()
        self.client = client or build_client(
            openai.OpenAI, **self._options, http_client=openai.DefaultHttpxClient(verify=self._tls)
        )
        self._async_client = async_client
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[openai.AsyncOpenAI, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        # What the server accepts, learned from its 400s and kept for this judge's lifetime.
        self._reply_format = REPLY_FORMATS[0]
        self._tokens_param = "max_tokens"
        self._send_temperature = True

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIJudge:
        """The judge configured by ``MASTER_*``, ``OPENAI_*``, ``JUDGE_*``, ``CACHE_PATH`` and ``CONSISTENCY_RUNS``."""
        return cls(
            model=settings.master_model_name,
            max_tokens=settings.master_max_new_tokens,
            temperature=settings.master_temperature,
            timeout=settings.judge_timeout_seconds,
            max_retries=settings.judge_max_retries,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            cache=GradeCache(settings.cache_path),
            consistency_runs=settings.consistency_runs,
        )

    def __repr__(self) -> str:
        return (
            f"OpenAIJudge(model={self.model!r}, endpoint={self._endpoint!r}, prompt_version={self.prompt_version!r}, "
            f"consistency_runs={self.consistency_runs})"
        )

    @property
    def reply_format(self) -> str:
        """The reply format in use: ``json_schema``, then ``json_object`` or ``prompt`` if the server refused."""
        return self._reply_format

    @property
    def _endpoint(self) -> str:
        """Host and port of the API (no path, no credentials) for messages."""
        parts = urlsplit(str(self.client.base_url))
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)

    # -- public API ------------------------------------------------------------------------------
    def grade(self, request: GradeRequest) -> JudgeResult:
        """Grade one answer (blocking); a failure is a result with status error, never an exception."""
        started = time.perf_counter()
        key = self._key(request)
        entry = self.cache.get(key) if self.cache is not None else None
        if entry is not None:
            return self._cached(entry, started)
        runs = [self._run(request) for _ in range(self.consistency_runs)]
        result = self._combine(runs, started)
        if self._cacheable(result):
            self._store(key, result)
        return result

    async def agrade(self, request: GradeRequest) -> JudgeResult:
        """Grade one answer on the running event loop (AsyncOpenAI; the cache is read in a worker thread)."""
        started = time.perf_counter()
        key = self._key(request)
        entry = await asyncio.to_thread(self.cache.get, key) if self.cache is not None else None
        if entry is not None:
            return self._cached(entry, started)
        runs = await asyncio.gather(*(self._arun(request) for _ in range(self.consistency_runs)))
        result = self._combine(list(runs), started)
        if self._cacheable(result):
            await asyncio.to_thread(self._store, key, result)
        return result

    def grade_many(self, requests: Sequence[GradeRequest]) -> list[JudgeResult]:
        """Grade many answers, in order, ``concurrency`` calls at a time."""
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self.grade, requests))

    def request_body(self, request: GradeRequest) -> dict[str, Any]:
        """The chat-completions request body for ``request`` (e.g. a line of an OpenAI Batch API file)."""
        return self._body(self.prompt.messages(request))

    def close(self) -> None:
        """Close the HTTP client(s) and the cache."""
        self.client.close()
        if self.cache is not None:
            self.cache.close()

    # -- one grading run ---------------------------------------------------------------------------
    def _run(self, request: GradeRequest) -> _Run:
        messages = self.prompt.messages(request)
        usage, reason = Usage(), ""
        for _attempt in range(1 + self.reply_retries):
            try:
                body = self._create(messages)
            except openai.OpenAIError as exc:
                return self._failed(exc, usage)
            usage += self._usage(body)
            try:
                return _Run(completion_grade(body, max_tokens=self.max_tokens), None, usage)
            except ValueError as exc:
                reason = str(exc)
                logger.warning("Judge reply is not a valid grade (%s); asking again", reason)
        return self._invalid(reason, usage)

    async def _arun(self, request: GradeRequest) -> _Run:
        messages = self.prompt.messages(request)
        usage, reason = Usage(), ""
        for _attempt in range(1 + self.reply_retries):
            try:
                body = await self._acreate(messages)
            except openai.OpenAIError as exc:
                return self._failed(exc, usage)
            usage += self._usage(body)
            try:
                return _Run(completion_grade(body, max_tokens=self.max_tokens), None, usage)
            except ValueError as exc:
                reason = str(exc)
                logger.warning("Judge reply is not a valid grade (%s); asking again", reason)
        return self._invalid(reason, usage)

    def _create(self, messages: list[dict[str, str]]) -> Any:
        """The parsed reply body of a chat-completions call, after any fallback from a rejected option."""
        while True:
            body = self._body(messages)
            try:
                return _decoded(self.client.post(CHAT_COMPLETIONS, cast_to=bytes, body=body))
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if not self._adapt(exc, body):
                    raise

    async def _acreate(self, messages: list[dict[str, str]]) -> Any:
        """:meth:`_create` on the running event loop."""
        client = await self._aclient()
        while True:
            body = self._body(messages)
            try:
                return _decoded(await client.post(CHAT_COMPLETIONS, cast_to=bytes, body=body))
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if not self._adapt(exc, body):
                    raise

    async def _aclient(self) -> openai.AsyncOpenAI:
        """The injected async client, or one per event loop (an httpx pool cannot outlive its loop)."""
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._async_clients.get(loop)
            new = entry is None
            if entry is None:
                http_client = openai.DefaultAsyncHttpxClient(verify=self._tls)
                client = build_client(openai.AsyncOpenAI, **self._options, http_client=http_client)
                entry = self._async_clients[loop] = (client, _close_when_loop_ends(client))
        if new:
            await anext(entry[1])  # park the closer: the loop now knows it
        return entry[0]

    def _body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, self._tokens_param: self.max_tokens}
        if self._send_temperature:
            body["temperature"] = self.temperature
        if self._reply_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": self.prompt.schema_name, "schema": self.prompt.schema, "strict": True},
            }
        elif self._reply_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _adapt(self, exc: openai.APIStatusError, sent: dict[str, Any]) -> bool:
        """Fall back from a request option the server rejected; True when a changed request is worth sending."""
        text = f"{exc.param or ''} {server_message(exc, [self._secret])}".lower()
        sent_format = (sent.get("response_format") or {}).get("type")
        with self._lock:
            if sent_format and any(w in text for w in ("response_format", "json_schema", "json_object", "structured")):
                fallback = REPLY_FORMATS[REPLY_FORMATS.index(sent_format) + 1]
                if REPLY_FORMATS.index(fallback) > REPLY_FORMATS.index(self._reply_format):
                    logger.warning("Judge server refused reply format %s; using %s from now on", sent_format, fallback)
                    self._reply_format = fallback
                return True
            if "max_tokens" in sent and "max_completion_tokens" in text:
                self._tokens_param = "max_completion_tokens"
                return True
            if "temperature" in sent and "temperature" in text:
                logger.warning("Judge model refused temperature=%s; using its default", self.temperature)
                self._send_temperature = False
                return True
        return False

    def _usage(self, body: Any) -> Usage:
        """Tokens and cost of one reply (none when the body reports no usage)."""
        u = body.get("usage") if isinstance(body, dict) else None
        return reply_usage(self.model, u if isinstance(u, dict) else None)

    # -- results -----------------------------------------------------------------------------------
    def _key(self, request: GradeRequest) -> str:
        return cache_key(
            request,
            model=self.model,
            temperature=self.temperature,
            prompt_version=self.prompt_version,
            runs=self.consistency_runs,
        )

    def _result(self, status: Status, started: float, **fields: Any) -> JudgeResult:
        latency = (time.perf_counter() - started) * 1000
        return JudgeResult(status, self.backend, self.model, self.prompt_version, latency_ms=latency, **fields)

    def _cached(self, entry: CacheEntry, started: float) -> JudgeResult:
        return self._result("ok", started, grade=entry.grade, consistency=entry.consistency, cache_hit=True)

    def _combine(self, runs: list[_Run], started: float) -> JudgeResult:
        """One result from k runs: the grade whose score is closest to the mean, usage summed."""
        usage = sum((r.usage for r in runs), Usage())
        grades = [r.grade for r in runs if r.grade is not None]
        if not grades:
            return self._result("error", started, error=runs[-1].error, usage=usage)
        if self.consistency_runs == 1:
            return self._result("ok", started, grade=grades[0], usage=usage)
        if len(grades) < len(runs):
            logger.warning("%d of %d consistency runs failed", len(runs) - len(grades), len(runs))
        scores = [g.score for g in grades]
        mean = statistics.fmean(scores)
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        chosen = min(grades, key=lambda g: abs(g.score - mean))
        consistency = Consistency(runs=len(scores), mean=round(mean, 3), stdev=round(spread, 3), scores=scores)
        return self._result("ok", started, grade=chosen, usage=usage, consistency=consistency)

    def _cacheable(self, result: JudgeResult) -> bool:
        """Only successful grades, and for a consistency check only a complete one."""
        if self.cache is None or not result.ok:
            return False
        return result.consistency is None or result.consistency.runs == self.consistency_runs

    def _store(self, key: str, result: JudgeResult) -> None:
        if self.cache is None or result.grade is None:
            return
        self.cache.put(
            key, result.grade, model=self.model, prompt_version=self.prompt_version, consistency=result.consistency
        )

    # -- errors ------------------------------------------------------------------------------------
    def _invalid(self, reason: str, usage: Usage) -> _Run:
        attempts = 1 + self.reply_retries
        return _Run(None, f"The judge's reply was not a valid grade after {attempts} attempt(s): {reason}", usage)

    def _failed(self, exc: openai.OpenAIError, usage: Usage) -> _Run:
        reason = self.describe_error(exc)
        logger.warning("Judge call failed: %s", reason)
        return _Run(None, reason, usage)

    def describe_error(self, exc: openai.OpenAIError) -> str:
        """A human sentence for an API failure, without the key or anything that looks like one."""
        return describe_api_error(
            exc,
            api="the judge API",
            secrets=[self._secret],
            endpoint=self._endpoint,
            timeout=self.timeout,
            retries=self.max_retries,
            model=self.model,
        )
