"""The OpenAI Batch API path: grade a large file of answers at half price, within a 24 h window.

The flow is ``submit`` -> ``poll``/``wait`` -> ``ingest``:

* **submit** writes one request line per item that is not yet graded in the log (``custom_id`` = the
  item key of :mod:`evaluator.batch_io`, ``body`` = :meth:`OpenAIJudge.request_body`) to a JSONL request
  file, uploads it (Files API, purpose ``batch``), creates the batch and saves a small state file next to
  the output (``<output>.openai-batch.json``: batch and file ids, model, prompt version, the scrubbed items;
  no key, no URL).
* **ingest**, once the batch has ended, downloads its output and error files and turns each line into an
  :class:`EvaluationRecord` through the judge's own reply validation
  (:func:`judge_prompt.completion_grade`): an invalid reply or a failed request becomes status error with
  its reason, never a score. Usage is priced at the Batch
  API's half price. Records get deterministic ids, so ingesting twice adds nothing: a success has the id
  :func:`batch.record_id` gives it in the interactive batch engine (job id = the one ``batch`` derives from
  the output path, so both resume each other), an error one tied to the OpenAI batch that produced it (a
  later batch may still grade the item). The results file is written with :func:`batch_io.write_results`.

Candidate answering is out of scope here: rows need answers.

Example::

    parsed = parse_batch(Path("answers.jsonl"), evaluator=evaluator)
    job = submit(evaluator, parsed.items, "graded.jsonl")
    wait(evaluator, job, interval=60)
    print(ingest(evaluator, "graded.jsonl").text())
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import openai

from .batch import default_job_id, record_id
from .batch_io import BatchItem, ResultRow, file_format, write_results
from .batch_summary import BatchSummary, summarize
from .errors import ConfigError, InputError, JudgeError
from .files import write_atomic
from .judge import OpenAIJudge
from .judge_prompt import completion_grade
from .models import EvaluationRecord, GradeRequest, JudgeResult, utc_now
from .openai_clients import describe_api_error
from .pricing import reply_usage
from .redact import redact
from .runs import RunInfo, log_run, run_record

if TYPE_CHECKING:
    from openai.types import Batch

    from .service import Evaluator

logger = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
STATE_SUFFIX = ".openai-batch.json"
REQUESTS_SUFFIX = ".openai-batch-requests.jsonl"
# Statuses after which a batch changes no more.
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
DEFAULT_POLL_SECONDS = 30.0
STATE_VERSION = 1
# Why an item has no line in the output or error file, by the batch's final status.
_NOT_RUN = {
    "expired": "The batch expired (24 h window) before this request ran",
    "cancelled": "The batch was cancelled before this request ran",
}

T = TypeVar("T")


def state_path(output: str | os.PathLike[str]) -> Path:
    """The job state file kept next to the results file ``output``."""
    output = Path(output)
    return output.with_name(output.name + STATE_SUFFIX)


def requests_path(output: str | os.PathLike[str]) -> Path:
    """The Batch API request file (JSONL) written next to the results file ``output``."""
    output = Path(output)
    return output.with_name(output.name + REQUESTS_SUFFIX)


@dataclass(frozen=True)
class BatchJob:
    """What ``submit`` saves next to the output: enough to poll and ingest the batch later (no secrets).

    ``items`` are every valid item of the job (texts PII-scrubbed), ``submitted`` the keys sent in this
    batch (the others were graded before). ``closed``: ingested or failed, so a new batch may be submitted.
    """

    job_id: str
    batch_id: str
    input_file_id: str
    model: str
    prompt_version: str
    items: list[BatchItem]
    submitted: list[str]
    created_at: str = field(default_factory=utc_now)
    closed: bool = False

    def save(self, output: str | os.PathLike[str]) -> Path:
        """Write the state file of results file ``output`` (atomically); returns its path."""
        data = {"version": STATE_VERSION, **asdict(self)}
        path = state_path(output)
        write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, output: str | os.PathLike[str]) -> BatchJob:
        """The job saved for results file ``output``; :class:`InputError` if there is none or it is unreadable."""
        path = state_path(output)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data.pop("version", None)
            data["items"] = [BatchItem(**item) for item in data["items"]]
            return cls(**data)
        except FileNotFoundError:
            raise InputError(
                f"No OpenAI batch job for {output}: its state file {path.name} does not exist"
                " (submit one with `python -m evaluator openai-batch submit INPUT -o OUTPUT`)."
            ) from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise InputError(f"The batch state file {path} is unreadable ({type(exc).__name__}: {exc}).") from None


def openai_judge(evaluator: Evaluator) -> OpenAIJudge:
    """The evaluator's OpenAI judge (its client talks to the Batch API); :class:`ConfigError` without one."""
    settings = evaluator.settings
    if settings.effective_judge_backend != "openai":
        hint = "unset JUDGE_BACKEND or set it to openai" if settings.openai_api_key else "set OPENAI_API_KEY"
        raise ConfigError(f"The OpenAI Batch API needs the OpenAI judge: {hint}.")
    judge = evaluator.judge
    if not isinstance(judge, OpenAIJudge):
        raise ConfigError(f"The OpenAI Batch API needs the OpenAI judge, not the {judge.backend} judge.")
    return judge


def _call(judge: OpenAIJudge, what: str, call: Callable[[], T]) -> T:
    """``call()``, with an API failure turned into a :class:`JudgeError` that names ``what`` (never the key)."""
    try:
        return call()
    except openai.OpenAIError as exc:
        reason = describe_api_error(exc, api="the OpenAI API", secrets=[judge.client.api_key])
        raise JudgeError(f"Could not {what}: {reason}") from None


def request_line(judge: OpenAIJudge, item: BatchItem) -> dict[str, Any]:
    """One line of the Batch API request file: the chat-completions request grading ``item``."""
    if item.answer is None:
        raise InputError(f"Item {item.key} has no answer to grade.")
    request = GradeRequest(question=item.question, reference=item.reference, answer=item.answer)
    return {"custom_id": item.key, "method": "POST", "url": ENDPOINT, "body": judge.request_body(request)}


def _graded(evaluator: Evaluator, job_id: str, key: str) -> bool:
    """True when item ``key`` of job ``job_id`` already has a successful grade in the log."""
    record = evaluator.log.evaluation(record_id(job_id, key))
    return record is not None and record.batch_id == job_id and record.ok


def submit(
    evaluator: Evaluator,
    items: Sequence[BatchItem],
    output: str | os.PathLike[str],
    *,
    job_id: str | None = None,
    name: str | None = None,
    input_name: str | None = None,
) -> BatchJob | None:
    """Send the items not yet graded to the Batch API and save the job's state; None when all are graded.

    Args:
        evaluator: supplies the OpenAI judge (its request body and client), PII scrubbing and the log.
        items: from :func:`batch_io.parse_batch`, every one with an answer.
        output: the results file (``.jsonl``/``.csv``) that ``ingest`` writes; state and request files go beside it.
        job_id: the ``batch_id`` of the log records; default tied to ``output``, as in ``python -m evaluator batch``.
        name, input_name: the run's name and input file name, for its run record (:mod:`evaluator.runs`).
    """
    output = Path(output)
    file_format(output)
    judge = openai_judge(evaluator)
    unanswered = [item.line for item in items if item.answer is None]
    if unanswered:
        lines = ", ".join(map(str, unanswered[:10])) + (", ..." if len(unanswered) > 10 else "")
        raise InputError(
            f"{len(unanswered)} row(s) have no answer (lines {lines}): the Batch API path grades given answers only."
            " Let a candidate model answer them with `python -m evaluator batch --candidate-model ...`."
        )
    if state_path(output).exists():
        previous = BatchJob.load(output)
        if not previous.closed:
            raise InputError(
                f"Batch {previous.batch_id} for {output} has not been ingested yet: run"
                f" `python -m evaluator openai-batch ingest {output}` first."
            )
    job_id = job_id or default_job_id(output)
    scrub = evaluator.scrub
    items = [
        replace(item, question=scrub(item.question), reference=scrub(item.reference), answer=scrub(item.answer or ""))
        for item in items
    ]
    todo = [item for item in items if not _graded(evaluator, job_id, item.key)]
    if not todo:
        return None
    path = requests_path(output)
    write_atomic(path, "".join(json.dumps(request_line(judge, item), ensure_ascii=False) + "\n" for item in todo))
    client = judge.client
    upload = _call(judge, "upload the request file", lambda: client.files.create(file=path, purpose="batch"))
    batch = _call(
        judge,
        "create the batch",
        lambda: client.batches.create(
            input_file_id=upload.id, endpoint=ENDPOINT, completion_window=COMPLETION_WINDOW, metadata={"job_id": job_id}
        ),
    )
    job = BatchJob(
        job_id=job_id,
        batch_id=batch.id,
        input_file_id=upload.id,
        model=judge.model,
        prompt_version=judge.prompt_version,
        items=items,
        submitted=[item.key for item in todo],
    )
    job.save(output)
    info = RunInfo(name=name, source="openai-batch", input=input_name)
    log_run(evaluator, run_record(evaluator, job_id, "start", items, info))
    done = len(items) - len(todo)
    logger.info("Batch %s submitted for job %s: %d requests (%d graded before)", batch.id, job_id, len(todo), done)
    return job


def poll(evaluator: Evaluator, job: BatchJob) -> Batch:
    """The batch as the API reports it now."""
    judge = openai_judge(evaluator)
    return _call(judge, f"retrieve batch {job.batch_id}", lambda: judge.client.batches.retrieve(job.batch_id))


def describe(batch: Batch) -> str:
    """One line on a batch: status and request counts (and its errors when it failed)."""
    counts = batch.request_counts
    done = f"{counts.completed} of {counts.total} requests done, {counts.failed} failed" if counts else "no counts yet"
    text = f"Batch {batch.id}: {batch.status}, {done}"
    if batch.status == "failed":
        text += f" — {_batch_errors(batch)}"
    return text


def _batch_errors(batch: Batch) -> str:
    data = batch.errors.data if batch.errors and batch.errors.data else []
    parts = [f"{f'line {e.line}: ' if e.line else ''}{e.message or e.code}" for e in data[:5]]
    return "; ".join(parts) or "no reason given"


def wait(
    evaluator: Evaluator,
    job: BatchJob,
    *,
    interval: float = DEFAULT_POLL_SECONDS,
    on_poll: Callable[[Batch], None] | None = None,
) -> Batch:
    """Poll every ``interval`` seconds until the batch is completed, failed, expired or cancelled."""
    if interval <= 0:
        raise InputError(f"The poll interval must be positive, got {interval}")
    while True:
        batch = poll(evaluator, job)
        if on_poll is not None:
            on_poll(batch)
        if batch.status in TERMINAL:
            return batch
        time.sleep(interval)


def _download(judge: OpenAIJudge, file_id: str) -> dict[str, dict[str, Any]]:
    """The lines of a batch output or error file, by ``custom_id``; a damaged line is skipped with a warning."""
    content = _call(judge, f"download file {file_id}", lambda: judge.client.files.content(file_id))
    lines: dict[str, dict[str, Any]] = {}
    for raw in content.text.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            lines[str(line["custom_id"])] = line
        except (json.JSONDecodeError, KeyError, TypeError):
            logger.warning("Batch file %s: skipping a damaged line", file_id)
    return lines


def _result(judge: OpenAIJudge, job: BatchJob, line: dict[str, Any] | None, status: str) -> JudgeResult:
    """The judge result of one batch line (None: the item has no line)."""
    base = {"backend": OpenAIJudge.backend, "model": job.model, "prompt_version": job.prompt_version}
    if line is None:
        reason = _NOT_RUN.get(status, "The batch output has no result for this request")
        return JudgeResult("error", error=f"{reason}; submit again to retry it.", **base)
    response = line.get("response") or {}
    if line.get("error") or response.get("status_code") != 200:
        error = line.get("error") or (response.get("body") or {}).get("error") or {}
        code = response.get("status_code")
        reason = redact(str(error.get("message") or error.get("code") or "no reason given"), judge.client.api_key)
        where = f"returned {code}" if code else "failed"
        return JudgeResult("error", error=f"The Batch API request {where}: {reason[:300]}", **base)
    body = response.get("body") or {}
    tokens = body.get("usage")
    usage = reply_usage(job.model, tokens if isinstance(tokens, dict) else None, batch=True)
    try:
        grade = completion_grade(body, max_tokens=judge.max_tokens)
    except ValueError as exc:
        return JudgeResult("error", error=f"The judge's reply was not a valid grade: {exc}", usage=usage, **base)
    return JudgeResult("ok", grade=grade, usage=usage, **base)


def ingest(evaluator: Evaluator, output: str | os.PathLike[str]) -> BatchSummary:
    """Log the results of the ended batch of ``output`` and write its results file; safe to run again.

    Raises :class:`InputError` while the batch is still running and :class:`JudgeError` when it failed
    (nothing was graded; the job is closed so that it can be submitted again).
    """
    output = Path(output)
    job = BatchJob.load(output)
    judge = openai_judge(evaluator)
    batch = poll(evaluator, job)
    if batch.status == "failed":
        replace(job, closed=True).save(output)
        raise JudgeError(
            f"Batch {batch.id} failed: {_batch_errors(batch)}. Nothing was graded; fix the cause and submit again."
        )
    if batch.status not in TERMINAL:
        raise InputError(f"{describe(batch)}. Ingest it when it has ended, or add --wait.")
    lines: dict[str, dict[str, Any]] = {}
    for file_id in (batch.error_file_id, batch.output_file_id):
        if file_id:
            lines.update(_download(judge, file_id))
    by_key = {item.key: item for item in job.items}
    records: dict[str, EvaluationRecord] = {}
    added = 0
    for key in job.submitted:
        item = by_key[key]
        result = _result(judge, job, lines.get(key), batch.status)
        # A success gets the id the batch engine's resume looks for; an error one tied to this OpenAI batch.
        rid = record_id(job.job_id, key) if result.ok else record_id(batch.id, key)
        logged = evaluator.log.evaluation(rid)
        if logged is None:
            request = GradeRequest(question=item.question, reference=item.reference, answer=item.answer or "")
            logged = EvaluationRecord.build(
                request,
                result,
                source="batch",
                question_id=item.question_id,
                category=item.category,
                difficulty=item.difficulty,
                batch_id=job.job_id,
                id=rid,
            )
            evaluator.record(logged)
            added += 1
        records[key] = logged
    rows = []
    for item in job.items:
        record = records.get(item.key) or evaluator.log.evaluation(record_id(job.job_id, item.key))
        if record is None:
            logger.warning("Item %s was graded before this batch but is no longer in the log", item.key)
            continue
        rows.append(ResultRow.of(item, record))
    write_results(rows, output)
    if added:
        log_run(evaluator, run_record(evaluator, job.job_id, "end", job.items, RunInfo(source="openai-batch")))
    replace(job, closed=True).save(output)
    ended = batch.completed_at or batch.expired_at or batch.cancelled_at or batch.created_at
    logger.info("Batch %s ingested: %d records added to the log", batch.id, added)
    return summarize(
        job.job_id,
        rows,
        skipped=len(job.items) - len(job.submitted),
        processed=len(job.submitted),
        wall_seconds=max(0.0, float(ended - batch.created_at)),
    )
