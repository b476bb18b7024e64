"""The web server's guards, as pure ASGI middleware, and what ``/healthz`` may show the public.

* :class:`ClientAddress` sets the client's address from ``X-Forwarded-For`` written by proxies the owner runs
  (``TRUSTED_PROXY_HOPS``; 1 on a Space), counting from the right: entries to their left were written by the
  client and are never trusted.
* :class:`BodyLimit` answers ``413`` to a request whose body is over a limit, while it streams (a declared
  ``Content-Length`` is refused before any byte is read), so a huge body never fills memory.
* :class:`LoginThrottle` limits ``POST /login`` per client (``LOGIN_ATTEMPTS_PER_MINUTE``) with a ``429``.
* :func:`bound_sessions` caps the Gradio sessions kept in memory, so API calls do not grow it without end.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import RateLimitedError
from .ratelimit import RateLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]


async def _reply(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def forwarded_client(values: list[str], hops: int) -> str | None:
    """The client address that the last ``hops`` proxies saw, from ``X-Forwarded-For`` header ``values``.

    Each proxy appends the address it received the request from, so the entry ``hops`` from the right was
    written by the outermost trusted proxy; None if there are fewer entries (no trusted proxy wrote one).
    """
    entries = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if hops < 1 or len(entries) < hops:
        return None
    return entries[-hops][:64]


class ClientAddress:
    """Set ``scope["client"]`` from ``X-Forwarded-For`` entries written by ``hops`` trusted proxies (0: ignore it)."""

    def __init__(self, app: ASGIApp, *, hops: int) -> None:
        self.app = app
        self.hops = hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.hops:
            host = forwarded_client(_header(scope, b"x-forwarded-for"), self.hops)
            if host:
                scope["client"] = (host, 0)
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (``uploads``: a larger limit for paths ending ``/upload``) with 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes or max_bytes

    def _limit(self, scope: Scope) -> int:
        return self.upload_bytes if scope.get("path", "").rstrip("/").endswith("/upload") else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        message = f"The request is too large: the limit is {limit // 1000:,} kB."
        declared = _header(scope, b"content-length")
        if declared and (not declared[0].strip().isdigit() or int(declared[0]) > limit):
            await _reply(send, 413, message)
            return
        seen = 0
        started = replied = False

        async def limited_receive() -> Message:
            nonlocal seen, started, replied
            if replied:
                return {"type": "http.disconnect"}
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > limit:
                    # Answer now and tell the app the client left: it stops reading, and what it sends is dropped.
                    if not started:
                        await _reply(send, 413, message)
                    started = replied = True
                    return {"type": "http.disconnect"}
            return event

        async def tracked_send(event: Message) -> None:
            nonlocal started
            if replied:
                return
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        await self.app(scope, limited_receive, tracked_send)


class LoginThrottle:
    """Allow ``per_minute`` ``POST .../login`` attempts per client; more get ``429`` saying when to retry."""

    def __init__(self, app: ASGIApp, *, per_minute: int, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.limiter = limiter or RateLimiter(per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and scope.get("path", "").rstrip("/").endswith("/login")
        ):
            client = (scope.get("client") or ("unknown",))[0]
            try:
                self.limiter.check(client)
            except RateLimitedError as exc:
                wait = max(1, math.ceil(exc.retry_after))
                message = f"Too many login attempts: try again in {wait} s."
                await _reply(send, 429, message, [(b"retry-after", str(wait).encode())])
                return
        await self.app(scope, receive, send)


# Gradio keeps every session (a copy of each component's config: about 280 KB for this app) up to 10,000 by
# default, and each HTTP API call without a session hash (curl, most scripts) is a new session.
STATEFUL_SESSIONS = 1000  # sessions with a gr.State value: a browser tab (its dataset, question, last grade)
STATELESS_SESSIONS = 64  # sessions with none (API calls): nothing of theirs is needed once the call returned


def bound_sessions(blocks: Any, *, stateful: int = STATEFUL_SESSIONS, stateless: int = STATELESS_SESSIONS) -> None:
    """Keep at most ``stateless`` sessions without state (oldest dropped first) and ``stateful`` sessions in all.

    Call it after ``gr.mount_gradio_app(app, blocks, ...)``, which gives ``blocks`` its session store. API calls
    then cost no memory once answered, and never push a browser session (and its state) out of the store.
    """
    if stateless < 1:
        raise ValueError(f"stateless must be at least 1 (the session being served), got {stateless!r}")
    holder = blocks.state_holder
    holder.capacity = stateful
    update = holder.update  # Gradio's: marks the session as used, drops the oldest over capacity

    def update_and_drop_stateless(session_id: str) -> None:
        update(session_id)
        with holder.lock:
            # Oldest first; ``session_id`` is the newest, so it is kept.
            idle = [key for key, state in list(holder.session_data.items()) if not state.state_data]
            for key in idle[: max(0, len(idle) - stateless)]:
                del holder.session_data[key]
                holder.time_last_used.pop(key, None)

    holder.update = update_and_drop_stateless


def public_health(health: dict[str, Any], limits: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``/healthz`` shows anyone: status and counts, without paths, repo ids, file names or error text."""
    public = {key: value for key, value in health.items() if key != "log"}
    log = dict(health.get("log") or {})
    log.pop("path", None)
    hub = log.get("hub")
    if hub is not None:
        log["hub"] = {
            "connected": hub.get("connected"),
            "every_minutes": hub.get("every_minutes"),
            "last_push": hub.get("last_push"),
            "failing": bool(hub.get("last_error")),  # the reason is in the server log, for the owner
        }
    public["log"] = log
    if limits is not None:
        public["limits"] = limits
    return public
