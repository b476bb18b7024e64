"""A real local OpenAI-compatible HTTP server for tests and benchmarks (no network, no mocks).

``FakeOpenAIServer`` serves ``POST /v1/chat/completions`` (and ``GET /v1/models``) on
``127.0.0.1`` with a random port, from a daemon thread. Point the real ``openai`` client at
``server.base_url``. It records every request, the peak number of concurrent requests and
the 429s it served, and it plays scripted responses first (``enqueue``) before its default
behaviour:

* a grading request (it has ``response_format``, or its last user message has ``<answer>`` and
  ``<reference>`` delimiters) gets a valid grade JSON computed deterministically from the word
  overlap between the delimited answer and reference, so a good answer scores above a bad one;
* a pairwise request (its last user message has ``<answer_a>`` and ``<answer_b>``) gets a verdict
  ``{"reason", "winner": "A" | "B" | "tie"}``: the answer with the higher overlap grade wins; with
  ``favour_first=True`` the first answer always wins (a position-biased judge);
* any other request (a candidate model asked a question) gets a plain-text answer, or
  ``answer_for(model, prompt)`` when given (different candidate models answering differently).

Every completion carries realistic ``usage`` token counts. With ``rate_limit_per_s`` set, requests
above that rate (sliding one-second window) get ``429`` with a ``Retry-After`` header saying
when a slot frees. With ``json_schema=False`` the server
rejects ``response_format`` of type ``json_schema`` with a 400, like OpenAI-compatible servers
that only know JSON mode.

It also serves the Files and Batch APIs, enough for ``client.files.create/content`` and
``client.batches.create/retrieve``: ``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}/content``,
``POST /v1/batches`` and ``GET /v1/batches/{id}``. A batch's input lines are validated (a bad line
fails the batch, as OpenAI does); it then "runs" each line through the same default behaviour (and
scripted responses) as a chat-completions request, either at once or after ``batch_polls`` status
polls, and its output and error files are JSONL in the Batch API's format. ``expire`` plays a
batch whose 24 h window ran out; ``batch_fail_reason`` makes every new batch fail validation.

Example::

    with FakeOpenAIServer(latency=0.05) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert len(server.requests) == 1
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from evaluator.models import verdict_for

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORD_TEXT = (
    "a an and are as at be by for from has have in is it its of on or that the this to was were what which who "
    "why how with will can do does not no you your i we they he she them"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _tag(text: str, name: str) -> str | None:
    """The text between the first ``<name>`` and the following ``</name>``, if both are present."""
    match = re.search(rf"<{name}>(.*?)</{name}>", text, flags=re.DOTALL | re.IGNORECASE)
    return match.group(1) if match else None


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def count_tokens(text: str) -> int:
    """A rough tokenizer-free token count (about 4 characters per token), at least 1."""
    return max(1, round(len(text) / 4))


def grade_from_overlap(question: str, reference: str, answer: str) -> dict[str, Any]:
    """A deterministic grade: the share of the reference's content words that the answer covers.

    Words the question already contains are ignored (question demoting), unless nothing else is left.
    """
    asked = set(_words(question))
    ref = set(_words(reference)) - asked or set(_words(reference))
    ans = set(_words(answer)) - asked or set(_words(answer))
    recall = len(ref & ans) / len(ref) if ref else 0.0
    precision = len(ref & ans) / len(ans) if ans else 0.0
    score = round(10 * recall, 1)
    missed = sorted(ref - ans)[:5]

    def level(x: float) -> int:
        return 1 + round(4 * x)

    return {
        "score": score,
        "verdict": verdict_for(score),
        "criteria": {
            "correctness": level(recall),
            "completeness": level(recall),
            "relevance": level(precision),
            "clarity": 4 if ans else 1,
        },
        "feedback": f"The answer covers {len(ref & ans)} of {len(ref)} key terms of the reference.",
        "missed_points": [f"mention '{w}'" for w in missed],
    }


def pairwise_verdict(prompt: str, first: str, second: str, *, favour_first: bool = False) -> dict[str, str]:
    """A pairwise verdict: the answer whose overlap grade is higher wins (ties within 0.5); or always the first."""
    if favour_first:
        return {"reason": "The first answer is better.", "winner": "A"}
    question, reference = _tag(prompt, "question") or "", _tag(prompt, "reference") or ""
    a = grade_from_overlap(question, reference, first)["score"]
    b = grade_from_overlap(question, reference, second)["score"]
    winner = "tie" if abs(a - b) < 0.5 else "A" if a > b else "B"
    return {"reason": f"Key terms covered: A {a}, B {b}.", "winner": winner}


def completion_body(content: str, *, model: str = "gpt-4o-mini", prompt_tokens: int = 100) -> dict[str, Any]:
    """A ``chat.completion`` response body with ``content`` as the assistant message."""
    completion_tokens = count_tokens(content)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error_body(message: str, *, type_: str = "server_error", param: str | None = None, code: str | None = None) -> dict:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass
class ScriptedResponse:
    """One response served before the default behaviour (see :meth:`FakeOpenAIServer.enqueue`)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeOpenAIServer:
    """A local OpenAI-compatible chat-completions server; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        rate_limit_per_s: float | None = None,
        retry_after: float = 0.05,
        json_schema: bool = True,
        batch_polls: int = 0,
        batch_fail_reason: str | None = None,
        answer_for: Callable[[str, str], str] | None = None,
        favour_first: bool = False,
        gather: int = 0,
        gather_timeout: float = 10.0,
    ) -> None:
        self.latency = latency
        self.rate_limit_per_s = rate_limit_per_s
        self.retry_after = retry_after
        self.json_schema = json_schema
        self.batch_polls = batch_polls
        self.batch_fail_reason = batch_fail_reason
        self.answer_for = answer_for
        self.favour_first = favour_first
        self.files: dict[str, dict[str, Any]] = {}  # file id -> file object plus its "content" bytes
        self.batches: dict[str, dict[str, Any]] = {}  # batch id -> batch object plus its "lines" and "polls"
        self.requests: list[dict[str, Any]] = []
        self.request_times: list[float] = []  # time.monotonic() at arrival, parallel to ``requests``
        self.request_headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.count_429 = 0
        self.served = 0
        # A one-shot barrier: the first ``gather`` chat requests are held until that many are in flight at once
        # (then ``gathered`` is True), or ``gather_timeout`` passed. So a test sees concurrency reached however
        # slow the machine, without guessing a latency long enough for every request to overlap.
        self.gather = gather
        self.gather_timeout = gather_timeout
        self.gathered = False
        self._arrived = 0
        self._script: collections.deque[ScriptedResponse] = collections.deque()
        self._lock = threading.Lock()
        self._peers = threading.Condition(self._lock)
        self._window: collections.deque[float] = collections.deque()  # admitted request times, last second
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread."""
        if self._httpd is not None:
            return self
        handler = type("_Handler", (_Handler,), {"fake": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler, bind_and_activate=False)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        httpd.request_queue_size = 256  # many concurrent clients in benchmarks
        httpd.allow_reuse_address = True
        httpd.server_bind()
        httpd.server_activate()
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (after start())."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, for ``openai.OpenAI(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ---------------------------------------------------------------------------
    def enqueue(
        self,
        *,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        content: str | None = None,
    ) -> None:
        """Serve this response to the next request, before the default behaviour.

        ``body`` is a dict (sent as JSON), a str or bytes (sent raw), or None: then a completion
        with ``content`` for status 200, or an OpenAI error body otherwise. Error statuses 429 and
        5xx get a ``Retry-After: retry_after`` header unless ``headers`` set one. ``delay`` sleeps
        before answering (longer than the client timeout to test timeouts).
        """
        headers = dict(headers or {})
        if body is None:
            if status == 200:
                body = completion_body(content if content is not None else "")
            else:
                body = error_body(f"scripted error {status}", type_="rate_limit_error" if status == 429 else "error")
        if (status == 429 or status >= 500) and not any(k.lower() == "retry-after" for k in headers):
            headers["Retry-After"] = str(self.retry_after)
        with self._lock:
            self._script.append(ScriptedResponse(status, body, headers, delay))

    def reset(self) -> None:
        """Forget recorded requests, counters and pending scripted responses."""
        with self._lock:
            self.requests.clear()
            self.request_times.clear()
            self.request_headers.clear()
            self._script.clear()
            self.max_in_flight = self.count_429 = self.served = 0

    # -- request handling (called from handler threads) ---------------------------------------
    def _await_peers(self) -> None:
        """Hold this request until ``gather`` requests are in flight together (once); call with the lock held."""
        if self._arrived >= self.gather:
            return
        self._arrived += 1
        if self._arrived == self.gather:
            self.gathered = True
            self._peers.notify_all()
        elif not self._peers.wait_for(lambda: self._arrived >= self.gather, timeout=self.gather_timeout):
            self._arrived = self.gather  # give up: let everyone through, ``gathered`` stays False
            self._peers.notify_all()

    def _admit(self, now: float) -> float:
        """Sliding one-second window rate limiter: 0 to admit, else the seconds until a slot frees."""
        if self.rate_limit_per_s is None:
            return 0.0
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit_per_s:
            return max(0.001, 1.0 - (now - self._window[0]))
        self._window.append(now)
        return 0.0

    def _respond(self, body: dict[str, Any]) -> ScriptedResponse:
        """The scripted or default response to one chat-completions request body."""
        now = time.monotonic()
        with self._lock:
            if self._script:
                return self._script.popleft()
            wait = self._admit(now)
        if wait:
            return ScriptedResponse(
                429,
                error_body("Rate limit reached, retry later.", type_="requests", code="rate_limit_exceeded"),
                {"Retry-After": f"{wait:.3f}"},
            )
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema" and not self.json_schema:
            return ScriptedResponse(
                400,
                error_body(
                    "Invalid parameter: response_format of type 'json_schema' is not supported with this model.",
                    type_="invalid_request_error",
                    param="response_format",
                ),
            )
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        prompt_tokens = sum(count_tokens(str(m.get("content") or "")) + 4 for m in messages)
        # The delimited blocks are read from the last user message (a system prompt may name the tags too).
        last = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
        answer, reference = _tag(last, "answer"), _tag(last, "reference")
        first, second = _tag(last, "answer_a"), _tag(last, "answer_b")
        if first is not None and second is not None:
            content = json.dumps(pairwise_verdict(last, first, second, favour_first=self.favour_first))
        elif fmt or (answer is not None and reference is not None):
            grade = grade_from_overlap(_tag(last, "question") or "", reference or "", answer or "")
            content = json.dumps(grade)
        elif self.answer_for is not None:
            content = self.answer_for(str(body.get("model") or ""), last)
        else:
            content = "In short: " + " ".join(_words(last)[:30]) + "."
        model = str(body.get("model") or "gpt-4o-mini")
        reply = completion_body(content, model=model, prompt_tokens=prompt_tokens)
        return ScriptedResponse(200, reply, {}, self.latency)

    # -- Files and Batch APIs (called from handler threads) ---------------------------------------
    def upload(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        """Store an uploaded file; returns its file object (without the content)."""
        file = {
            "id": f"file-{uuid.uuid4().hex[:24]}",
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        with self._lock:
            self.files[file["id"]] = {**file, "content": content}
        return file

    def create_batch(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /v1/batches``: (status, batch object or error body)."""
        endpoint, window = body.get("endpoint"), body.get("completion_window")
        if endpoint != "/v1/chat/completions":
            message = f"Unsupported endpoint {endpoint!r}"
            return 400, error_body(message, type_="invalid_request_error", param="endpoint")
        if window != "24h":
            return 400, error_body("completion_window must be '24h'", type_="invalid_request_error")
        with self._lock:
            file = self.files.get(str(body.get("input_file_id")))
        if file is None:
            return 404, error_body(f"No such File object: {body.get('input_file_id')}", type_="invalid_request_error")
        lines, errors = _batch_lines(file["content"], endpoint)
        if not errors and self.batch_fail_reason:
            errors = [{"code": "token_limit_exceeded", "line": None, "message": self.batch_fail_reason, "param": None}]
        now = int(time.time())
        batch: dict[str, Any] = {
            "id": f"batch_{uuid.uuid4().hex[:24]}",
            "object": "batch",
            "endpoint": endpoint,
            "errors": {"object": "list", "data": errors} if errors else None,
            "input_file_id": file["id"],
            "completion_window": window,
            "status": "failed" if errors else "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "completed_at": None,
            "failed_at": now if errors else None,
            "expired_at": None,
            "request_counts": {"total": 0 if errors else len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        with self._lock:
            self.batches[batch["id"]] = {"object": batch, "lines": lines, "polls": 0}
        if not errors and self.batch_polls <= 0:
            self._run_batch(batch["id"])
        return 200, self._batch_object(batch["id"])

    def retrieve_batch(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        """``GET /v1/batches/{id}``: each poll moves the batch on; after ``batch_polls`` polls it has run."""
        with self._lock:
            entry = self.batches.get(batch_id)
            if entry is None:
                return 404, error_body(f"No batch found with id '{batch_id}'.", type_="invalid_request_error")
            entry["polls"] += 1
            due = entry["object"]["status"] in ("validating", "in_progress") and entry["polls"] >= self.batch_polls
            if entry["object"]["status"] == "validating" and not due:
                entry["object"].update(status="in_progress", in_progress_at=int(time.time()))
        if due:
            self._run_batch(batch_id)
        return 200, self._batch_object(batch_id)

    def expire(self, batch_id: str) -> None:
        """End a batch that has not run as expired: each of its requests goes to the error file as ``batch_expired``."""
        with self._lock:
            entry = self.batches[batch_id]
            if entry["object"]["status"] not in ("validating", "in_progress"):
                raise RuntimeError(f"batch {batch_id} is already {entry['object']['status']}")
            lines = entry["lines"]
        message = "This request could not be executed before the completion window expired."
        errors = [
            {
                "id": f"batch_req_{uuid.uuid4().hex[:24]}",
                "custom_id": line["custom_id"],
                "response": None,
                "error": {"code": "batch_expired", "message": message},
            }
            for line in lines
        ]
        error_file = self._output_file(batch_id, "error", errors)
        with self._lock:
            entry["object"].update(
                status="expired",
                expired_at=int(time.time()),
                error_file_id=error_file,
                request_counts={"total": len(lines), "completed": 0, "failed": len(lines)},
            )

    def _run_batch(self, batch_id: str) -> None:
        """Answer every line of a batch as a chat-completions request; write its output and error files."""
        with self._lock:
            lines = self.batches[batch_id]["lines"]
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for line in lines:
            response = self._respond(line["body"])
            body = response.body
            if isinstance(body, bytes | str):
                try:
                    body = json.loads(body)
                except json.JSONDecodeError:
                    body = {"raw": body.decode() if isinstance(body, bytes) else body}
            result = {
                "id": f"batch_req_{uuid.uuid4().hex[:24]}",
                "custom_id": line["custom_id"],
                "response": {"status_code": response.status, "request_id": uuid.uuid4().hex, "body": body},
                "error": None,
            }
            (done if response.status == 200 else failed).append(result)
        output = self._output_file(batch_id, "output", done) if done else None
        errors = self._output_file(batch_id, "error", failed) if failed else None
        now = int(time.time())
        with self._lock:
            self.batches[batch_id]["object"].update(
                status="completed",
                in_progress_at=self.batches[batch_id]["object"]["in_progress_at"] or now,
                completed_at=now,
                output_file_id=output,
                error_file_id=errors,
                request_counts={"total": len(lines), "completed": len(done), "failed": len(failed)},
            )

    def _output_file(self, batch_id: str, kind: str, results: list[dict[str, Any]]) -> str:
        content = "".join(json.dumps(r) + "\n" for r in results).encode()
        return self.upload(f"{batch_id}_{kind}.jsonl", "batch_output", content)["id"]

    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.batches[batch_id]["object"]))


def _batch_lines(content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The requests of a batch input file, and its validation errors (``{"code", "line", "message"}``)."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()

    def fail(n: int, message: str) -> None:
        errors.append({"code": "invalid_request", "line": n, "message": message, "param": None})

    for n, raw in enumerate(content.decode("utf-8", errors="replace").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            fail(n, "This line is not parseable as valid JSON.")
            continue
        if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
            fail(n, "Each line must be an object with a 'body' object.")
        elif not isinstance(line.get("custom_id"), str) or not line["custom_id"]:
            fail(n, "Missing required parameter: 'custom_id'.")
        elif line["custom_id"] in seen:
            fail(n, f"The custom_id {line['custom_id']!r} is duplicated; custom_id must be unique.")
        elif line.get("method") != "POST" or line.get("url") != endpoint:
            fail(n, f"The method must be POST and the url must match the batch endpoint {endpoint}.")
        else:
            seen.add(line["custom_id"])
            models.add(str(line["body"].get("model")))
            lines.append(line)
    if len(models) > 1:
        fail(0, "All requests in a batch must use the same model.")
    if not lines and not errors:
        fail(0, "The input file has no requests.")
    return lines, errors


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API
    # Headers and body go out as two writes: with Nagle on, the body waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _send(
        self, status: int, body: Any, headers: dict[str, str] | None = None, content_type: str = "application/json"
    ) -> None:
        data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before we answered

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        content = re.fullmatch(r"/v1/files/([\w-]+)/content", path)
        batch = re.fullmatch(r"/v1/batches/([\w-]+)", path)
        if path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "owned_by": "fake"}]})
        elif content:
            with self.fake._lock:
                file = self.fake.files.get(content.group(1))
            if file is None:
                self._send(404, error_body(f"No such File object: {content.group(1)}", type_="invalid_request_error"))
            else:
                self._send(200, file["content"], content_type="application/octet-stream")
        elif batch:
            self._send(*self.fake.retrieve_batch(batch.group(1)))
        else:
            self._send(404, error_body(f"no route {self.path}", type_="invalid_request_error"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/files":
            self._upload(raw)
            return
        if path == "/v1/batches":
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send(400, error_body("request body is not JSON", type_="invalid_request_error"))
                return
            self._send(*self.fake.create_batch(body))
            return
        if path != "/v1/chat/completions":
            self._send(404, error_body(f"no route {self.path}", type_="invalid_request_error"))
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, error_body("request body is not JSON", type_="invalid_request_error"))
            return
        fake = self.fake
        with fake._lock:
            fake.requests.append(body)
            fake.request_times.append(time.monotonic())
            fake.request_headers.append(dict(self.headers.items()))
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            fake._await_peers()
        try:
            response = fake._respond(body)
            if response.delay > 0:
                time.sleep(response.delay)
            with fake._lock:
                fake.served += 1
                if response.status == 429:
                    fake.count_429 += 1
        finally:
            with fake._lock:
                fake.in_flight -= 1
        self._send(response.status, response.body, response.headers)

    def _upload(self, raw: bytes) -> None:
        """``POST /v1/files``: a multipart form with ``file`` and ``purpose``."""
        head = f"Content-Type: {self.headers.get('Content-Type', '')}\r\n\r\n".encode()
        form = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
        parts = {p.get_param("name", header="content-disposition"): p for p in form.iter_parts()}
        if "file" not in parts or "purpose" not in parts:
            self._send(400, error_body("A multipart form with 'file' and 'purpose' is required.", param="file"))
            return
        content = parts["file"].get_payload(decode=True) or b""
        purpose = (parts["purpose"].get_payload(decode=True) or b"").decode()
        self._send(200, self.fake.upload(parts["file"].get_filename() or "upload", purpose, content))
