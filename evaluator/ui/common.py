"""What every tab shares: error translation, the caller's identity, the session state and the app's limits."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from .. import views
from ..dataset import Dataset, QAItem
from ..errors import EvaluatorError, InputError, JudgeError, RateLimitedError
from ..jobs import BatchSlots
from ..limits import CostLimits
from ..models import EvaluationRecord
from ..ratelimit import RateLimiter
from ..service import Evaluator

logger = logging.getLogger("evaluator.ui")

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_ERROR_CHARS = 600
TOAST_SECONDS = 6  # how long an error toast stays (Gradio's default, 10 s, covers the buttons below it)

# Event options. ``PRIVATE``: not an API endpoint. ``QUIET``: an instant status-line update (no queue, no spinner).
PRIVATE: dict[str, Any] = {"api_visibility": "private"}
QUIET: dict[str, Any] = {**PRIVATE, "queue": False, "show_progress": "hidden"}


def _translate(exc: Exception, where: str) -> gr.Error:
    """``exc`` as a ``gr.Error``: the evaluator's own sentence (cut short), or a generic one for a bug (logged)."""
    if isinstance(exc, gr.Error):
        return exc
    message = str(exc)
    if len(message) > MAX_ERROR_CHARS:  # never echo a huge input back in full
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    if isinstance(exc, RateLimitedError):
        return gr.Error(message, duration=TOAST_SECONDS, title="Slow down", print_exception=False)
    if isinstance(exc, EvaluatorError):
        return gr.Error(message, duration=TOAST_SECONDS, print_exception=False)
    logger.exception("Unexpected error in %s", where)
    return gr.Error("Something went wrong on our side; it has been logged. Please try again.", duration=TOAST_SECONDS)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with the evaluator's errors turned into ``gr.Error`` with their human sentence (a toast, an API error)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise _translate(exc, fn.__name__) from None

        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc, fn.__name__) from None

    return call


def client_key(request: Any) -> str:
    """The rate-limit key of a ``gr.Request``: the client's IP (``evaluator.server.ClientAddress`` resolved it)."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


def whole(value: Any, name: str, low: int, high: int) -> int:
    """A whole-number parameter within ``[low, high]``; anything else (NaN, inf, text) is an :class:`InputError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}, got {str(value)[:40]!r}.")
    return int(number)


def uploaded(path: str | None, demo: gr.Blocks) -> Path | None:
    """The file a visitor uploaded through this app, or :class:`InputError` for any other path.

    Gradio checks paths only under ``launch()``, not under ``mount_gradio_app``: without this, an API call
    naming a server file (the log, a dataset) in a ``FileData`` would have it read. Upload folders are named
    by a keyed hash of the content, so a path is known only to whoever uploaded the file.
    """
    if not path:
        return None
    real = Path(path).resolve()
    if path not in demo.upload_file_set or not real.is_relative_to(Path(get_upload_folder()).resolve()):
        raise InputError("Upload the file through the app: a path on the server is not accepted.")
    return real


@dataclass
class AppContext:
    """The app-wide objects every tab and the JSON API use: the evaluator and the limits on what visitors spend.

    Args:
        evaluator: the app's evaluator (its dataset is the app's; a session may load another).
        limits: the model calls each client and the whole app may make.
    """

    evaluator: Evaluator
    limits: CostLimits
    limiter: RateLimiter = field(init=False)
    slots: BatchSlots = field(default_factory=BatchSlots)
    judge_warm: threading.Event = field(default_factory=threading.Event)  # set once a grade has loaded the judge

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.evaluator.settings.rate_limit_per_minute)

    @property
    def settings(self) -> Any:
        """The app's settings."""
        return self.evaluator.settings

    def session(self, ds: Dataset | None) -> Evaluator:
        """The evaluator for a session: over the dataset it loaded, else the app's."""
        return self.evaluator.with_dataset(ds) if ds is not None else self.evaluator

    def grade(self, ev: Evaluator, client: str, answer: str, **question: Any) -> EvaluationRecord:
        """``ev.evaluate`` once ``client`` is within its rate limit, its judge calls counted against its budget.

        Raises :class:`JudgeError` (the record is logged) when the judge failed.
        """
        runs = self.settings.consistency_runs  # judge calls per grade
        self.limiter.check(client)
        with self.limits.reserve(client, runs) as spent:
            record = ev.evaluate(answer, **question)
            spent.use(0 if record.result.cache_hit else runs)
        self.judge_warm.set()
        if not record.result.ok:
            raise JudgeError(views.judge_failure(record))
        return record

    def grading_notice(self) -> str:
        """The status line while a grade is computed (the first one also loads the offline judge's model)."""
        return views.grading_status(self.settings, first=not self.judge_warm.is_set())


def next_item(ev: Evaluator, category: str | None, difficulty: str | None, avoid: str | None = None) -> QAItem:
    """A random question within the filters (:data:`views.ANY` means any), preferably not the one just asked."""
    filters = {"category": views.chosen(category), "difficulty": views.chosen(difficulty)}
    item = ev.dataset.random(**filters)
    if item.id == avoid and len(ev.dataset.filter(**filters)) > 1:
        item = ev.dataset.random(**filters)
    return item


@dataclass
class SessionState:
    """The per-browser-session ``gr.State`` values every tab may read or write (never module globals)."""

    dataset: gr.State  # the Dataset this session loaded, or None for the app's
    question: gr.State  # id of the question the chat is waiting on
    last_grade: gr.State  # (id, summary) of the session's last grade: the Feedback tab refers to it

    @classmethod
    def create(cls) -> SessionState:
        """The states, created inside the current ``gr.Blocks``."""
        return cls(dataset=gr.State(None), question=gr.State(None), last_grade=gr.State(None))


def last_grade(record: EvaluationRecord) -> tuple[str, str]:
    """What the session keeps of its last grade (hashable, as a watched ``gr.State`` must be): id and summary."""
    return record.id, views.last_grade_markdown(record)
