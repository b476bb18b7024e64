"""The evaluator facade: the one object the app, the CLI and the API call.

It validates input, scrubs PII, asks the judge, and appends every evaluation (failed ones too)
to the evaluation log. Heavy collaborators (judge models, sentiment, Hub sync) load lazily.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .backends import Judge, build_judge
from .config import Settings
from .dashboard import DashboardFilter, filter_choices, filter_records
from .dataset import Dataset, QAItem, load_dataset, parse_dataset
from .errors import DatasetError, InputError, LogError, NotFoundError
from .log import EvalLog
from .log_stats import aggregate_records
from .models import EvaluationRecord, FeedbackRecord, GradeRequest
from .pii import scrub_pii
from .redact import redact
from .sentiment import SentimentAnalyzer, get_analyzer
from .textsafety import MAX_LABEL_CHARS, check_text

logger = logging.getLogger(__name__)

# A Hub dataset is cut to its first rows: the app keeps datasets in memory.
MAX_HUB_ROWS = 10_000
# A Hub repo id, "owner/name" (what huggingface_hub accepts): never a local path, which datasets would read.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}|[A-Za-z0-9][\w.-]{0,95}")


class Evaluator:
    """Grades answers against the Q&A dataset and records everything in the evaluation log."""

    def __init__(
        self,
        settings: Settings,
        *,
        dataset: Dataset | None = None,
        judge: Judge | None = None,
        log: EvalLog | None = None,
        sentiment: SentimentAnalyzer | None = None,
    ) -> None:
        self.settings = settings
        self._dataset = dataset
        self._judge = judge
        self._log = log
        self._sentiment = sentiment
        self._lock = threading.Lock()
        self._filter_choices: tuple[int, dict[str, Any]] | None = None  # (log records read, choices)

    # -- collaborators, built on first use -------------------------------------------------
    @property
    def dataset(self) -> Dataset:
        """The active Q&A dataset (loaded from ``DATA_PATH`` on first use)."""
        if self._dataset is None:
            with self._lock:
                if self._dataset is None:
                    self._dataset = load_dataset(self.settings.data_path)
        return self._dataset

    @dataset.setter
    def dataset(self, dataset: Dataset) -> None:
        self._dataset = dataset

    @property
    def judge(self) -> Judge:
        """The judge backend chosen by the settings."""
        if self._judge is None:
            with self._lock:
                if self._judge is None:
                    self._judge = build_judge(self.settings)
        return self._judge

    @property
    def log(self) -> EvalLog:
        """The evaluation log (and its Hub sync when configured)."""
        if self._log is None:
            with self._lock:
                if self._log is None:
                    self._log = EvalLog.from_settings(self.settings)
        return self._log

    @property
    def sentiment(self) -> SentimentAnalyzer:
        """The feedback sentiment analyzer for ``SENTIMENT_MODEL_NAME`` (its model loads on first use)."""
        if self._sentiment is None:
            with self._lock:
                if self._sentiment is None:
                    self._sentiment = get_analyzer(self.settings.sentiment_model_name)
        return self._sentiment

    def close(self) -> None:
        """Flush and stop background work (last Hub push)."""
        if self._log is not None:
            self._log.close()

    # -- other datasets --------------------------------------------------------------------
    def with_dataset(self, dataset: Dataset) -> Evaluator:
        """This evaluator over another dataset (e.g. one a user loaded), sharing judge, log and sentiment.

        Close only the original: the view's log is the original's.
        """
        return Evaluator(self.settings, dataset=dataset, judge=self.judge, log=self.log, sentiment=self.sentiment)

    def load_dataset(self, path: str | Path) -> Dataset:
        """A Q&A dataset from a JSON, JSONL or CSV file (:class:`DatasetError` naming what is wrong)."""
        return load_dataset(path)

    def load_hub_dataset(
        self,
        repo_id: str,
        *,
        split: str = "train",
        visitor: bool = False,
        loader: Callable[..., Any] | None = None,
    ) -> Dataset:
        """A Q&A dataset from the Hugging Face Hub via ``datasets.load_dataset``; :class:`DatasetError` if that fails.

        Rows need ``question`` and a reference column (``reference``, ``answer``...); rows without an ``id``
        are numbered. Only the first :data:`MAX_HUB_ROWS` rows are kept. ``repo_id`` must be a Hub id
        (``owner/name``), never a path on this machine. A ``visitor`` (anyone using the app) loads public
        datasets only: the owner's ``HF_TOKEN`` is used for the owner's own command-line calls.
        """
        repo_id = (repo_id or "").strip()
        split = (split or "").strip() or "train"
        if not repo_id:
            raise InputError("Give a Hub dataset id, such as 'owner/name'.")
        if not _HUB_ID.fullmatch(repo_id) or ".." in repo_id or Path(repo_id).exists():
            raise InputError(f"{repo_id[:100]!r} is not a Hub dataset id: give one such as 'owner/name'.")
        if not _HUB_ID.fullmatch(split):
            raise InputError(f"{split[:100]!r} is not a split name: give one such as 'train'.")
        token = None if visitor else self.settings.hf_token
        try:
            if loader is None:
                import datasets
                from huggingface_hub import constants, dataset_info

                if not constants.HF_HUB_OFFLINE:
                    # Fail in milliseconds when the Hub is unreachable, instead of after datasets' retries.
                    dataset_info(repo_id, timeout=10, token=token)
                loader = datasets.load_dataset
            rows = list(itertools.islice(loader(repo_id, split=split, token=token), MAX_HUB_ROWS))
        except Exception as exc:  # network, missing repo or split, bad config: all mean "not loadable"
            reason = redact((str(exc).strip().splitlines() or [""])[0], token)[:300]
            where = f"{repo_id!r} (split {split!r})"
            raise DatasetError(
                f"Could not load {where} from the Hugging Face Hub: {type(exc).__name__}: {reason}"
            ) from None
        records = [{"id": str(n), **row} if isinstance(row, dict) else row for n, row in enumerate(rows, 1)]
        return parse_dataset(json.dumps(records, default=str), "json", name=repo_id)

    # -- input handling --------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """``text`` with PII replaced by typed placeholders, when scrubbing is on."""
        return scrub_pii(text) if self.settings.pii_scrubbing else text

    def check_answer(self, answer: str | None) -> str:
        """The stripped answer, or :class:`InputError` if it is empty or too long."""
        text = (answer or "").strip()
        if not text:
            raise InputError("The answer is empty: write an answer to grade.")
        return check_text(text, "answer", limit=self.settings.max_answer_chars)

    def check_comment(self, comment: str | None) -> str:
        """The stripped feedback comment, or :class:`InputError` if it is empty or too long."""
        text = (comment or "").strip()
        if not text:
            raise InputError("The comment is empty: say what you think of the grade.")
        return check_text(text, "comment", limit=self.settings.max_comment_chars)

    def resolve(
        self, *, question_id: str | None = None, question: str | None = None, reference: str | None = None
    ) -> tuple[QAItem | None, str, str]:
        """The dataset item (if any), question text and reference to grade against.

        A free-form question and reference are checked against ``MAX_QUESTION_CHARS`` and ``MAX_REFERENCE_CHARS``.
        """
        if question_id and question_id.strip():
            item = self.dataset.get(check_text(question_id, "question id", limit=MAX_LABEL_CHARS))
            return item, item.question, item.reference
        question = check_text((question or "").strip(), "question", limit=self.settings.max_question_chars)
        if not question:
            raise InputError("Give a question id from the dataset, or a question (and its reference answer).")
        reference = check_text((reference or "").strip(), "reference", limit=self.settings.max_reference_chars)
        if not reference:
            match = self.dataset.closest(question)
            hint = f" The closest dataset question is {match[0].id}: {match[0].question!r}." if match else ""
            raise InputError("A free-form question needs a reference answer." + hint)
        return None, question, reference

    # -- actions ---------------------------------------------------------------------------
    def evaluate(
        self,
        answer: str,
        *,
        question_id: str | None = None,
        question: str | None = None,
        reference: str | None = None,
        source: str = "app",
    ) -> EvaluationRecord:
        """Grade ``answer`` and log it; a judge failure is logged and returned with status error."""
        text = self.check_answer(answer)
        item, q_text, ref = self.resolve(question_id=question_id, question=question, reference=reference)
        request = GradeRequest(question=self.scrub(q_text), reference=self.scrub(ref), answer=self.scrub(text))
        result = self.judge.grade(request)
        record = EvaluationRecord.build(
            request,
            result,
            source=source,
            question_id=item.id if item else None,
            category=item.category if item else None,
            difficulty=item.difficulty if item else None,
        )
        try:
            self.record(record)
        except LogError as exc:
            # The grade is already paid for: hand it back. The log keeps the record and writes it with the next one.
            logger.error("Evaluation %s was graded but not logged yet: %s", record.id, exc)
        return record

    def record(self, record: Any) -> None:
        """Append a record to the log; :class:`LogError` if the disk refuses it (kept in memory and retried)."""
        self.log.append(record)

    def submit_feedback(
        self, evaluation_id: str, *, agree: bool | None = None, rating: int | None = None, comment: str
    ) -> FeedbackRecord:
        """Record a person's feedback on a logged evaluation, with the sentiment of their comment.

        ``agree`` says whether they agree with the grade, ``rating`` is 1-5; both optional. Raises
        :class:`InputError` for a bad comment or rating and :class:`NotFoundError` for an unknown evaluation;
        nothing is logged then.
        """
        text = self.check_comment(comment)
        if agree is not None and not isinstance(agree, bool):
            raise InputError(f"agree must be true, false or empty, got {agree!r}.")
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5):
            raise InputError(f"The rating must be a whole number from 1 to 5, got {rating!r}.")
        evaluation_id = check_text((evaluation_id or "").strip(), "evaluation id", limit=MAX_LABEL_CHARS)
        if not evaluation_id:
            raise InputError("Give the id of the evaluation this feedback is about.")
        if self.log.evaluation(evaluation_id) is None:
            raise NotFoundError(f"There is no evaluation with id {evaluation_id!r} in the log.")
        text = self.scrub(text)
        record = FeedbackRecord(
            evaluation_id=evaluation_id,
            comment=text,
            sentiment=self.sentiment.analyze(text),
            agree=agree,
            rating=rating,
        )
        self.record(record)
        return record

    def recent_feedback_records(self, limit: int = 20) -> list[tuple[FeedbackRecord, EvaluationRecord | None]]:
        """The latest ``limit`` feedback records, newest first, each with the evaluation it rates (None if absent)."""
        if limit < 1:
            return []
        # Newest append first among equal timestamps (millisecond clock), then by time across merged replica logs.
        latest = sorted(reversed(self.log.feedback()), key=lambda fb: fb.timestamp, reverse=True)[:limit]
        # Look up only the evaluations shown, by id, instead of copying the whole log.
        return [(fb, self.log.evaluation(fb.evaluation_id)) for fb in latest]

    def recent_feedback(self, limit: int = 20) -> list[dict[str, Any]]:
        """:meth:`recent_feedback_records` as JSON: each feedback with the question, score and verdict graded."""
        return [
            {
                **fb.to_dict(),
                "question": evaluation.question if evaluation else None,
                "score": evaluation.score if evaluation else None,
                "verdict": evaluation.verdict if evaluation else None,
            }
            for fb, evaluation in self.recent_feedback_records(limit)
        ]

    def question_history(self, question_id: str) -> dict[str, Any]:
        """How often ``question_id`` was graded, its mean score and its last grades (from the log)."""
        return self.log.question_history(question_id)

    def dashboard(self, filtered: DashboardFilter | None = None) -> Any:
        """The log's running totals (scores, days, categories, agreement, sentiment, tokens, cost).

        With an active ``filtered``, the same figures over the evaluations it keeps (read from every record).
        """
        if filtered is None or not filtered.active:
            return self.log.aggregate()
        kept = filter_records(self.log.records(), filtered)
        return aggregate_records(kept, damaged=self.log.damaged_lines)

    def dashboard_records(self) -> list[dict[str, Any]]:
        """Every log record, oldest first: what the dashboard's drill-down reads."""
        return self.log.records()

    def dashboard_choices(self) -> dict[str, Any]:
        """What the dashboard's filters offer (:func:`filter_choices`), read again only once the log has grown.

        Reading every record costs about 0.7 s at 100,000 records; the running totals cost well under 1 ms.
        """
        count = self.log.aggregate()["records"]
        cached = self._filter_choices
        if cached is None or cached[0] != count:
            cached = self._filter_choices = (count, filter_choices(self.log.records()))
        return cached[1]

    def stream_batch(self, items: Sequence[Any], **options: Any) -> Iterator[Any]:
        """Grade ``items`` in a worker thread, yielding progress (see :func:`evaluator.jobs.stream_batch`)."""
        from .jobs import stream_batch

        return stream_batch(self, items, **options)

    def health(self) -> dict[str, Any]:
        """Status for ``/healthz``: judge, dataset, log and sentiment backend, without secrets."""
        s = self.settings
        return {
            "status": "ok",
            "judge_backend": s.effective_judge_backend,
            "judge_model": s.master_model_name if s.effective_judge_backend == "openai" else "offline",
            "dataset": {"name": self.dataset.name, "items": len(self.dataset)},
            "log": self.log.status(),
            "sentiment_backend": self.sentiment.loaded_backend or f"not loaded yet ({self.sentiment.model_name})",
        }
