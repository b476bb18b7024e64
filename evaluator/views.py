"""What the app shows: pure functions from records to Markdown and table rows (no Gradio, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .config import Settings
from .dataset import UNCATEGORISED, Dataset, QAItem
from .models import CRITERIA, VERDICTS, EvaluationRecord, FeedbackRecord, Grade, ScoreTally
from .text import plural

ANY = "Any"  # the dropdown choice that means "no filter"
DATASET_HEADERS = ["id", "question", "category", "difficulty"]  # key columns first: a phone shows those
FEEDBACK_HEADERS = ["time (UTC)", "evaluation", "grade", "agree", "rating", "sentiment", "comment", "question"]
BATCH_HEADERS = ["line", "question_id", "status", "score", "verdict", "answer", "reason · missed points / error"]
AGREE_CHOICES = ["Agree", "Disagree", "No opinion"]
CHAT_HINT = (
    "The grade appears in the chat, then the next question. **Next question** skips; the category, difficulty "
    "or id above choose what comes next."
)
MAX_TABLE_ROWS = 500  # a browser table of a 10,000-row Hub dataset would only be slow

if TYPE_CHECKING:
    from .batch_io import ResultRow


def _md(text: str | None) -> str:
    """``text`` safe inside a Markdown table cell or emphasis: one line, pipes escaped."""
    return " ".join((text or "").split()).replace("|", "\\|")


def _short(text: str | None, limit: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _score(score: float | None, digits: int = 1) -> str:
    return "n/a" if score is None else f"{score:.{digits}f}"


def choices(values: Iterable[str]) -> list[str]:
    """Dropdown choices: :data:`ANY` first, then ``values``."""
    return [ANY, *values]


def chosen(value: str | None) -> str | None:
    """A dropdown value as a filter: ``None`` for :data:`ANY` or nothing."""
    value = (value or "").strip()
    return None if not value or value == ANY else value


def judge_label(settings: Settings) -> str:
    """Which judge grades, in one Markdown line (never the key; only the host of a custom endpoint)."""
    if settings.effective_judge_backend == "openai":
        host = urlparse(settings.openai_base_url).hostname if settings.openai_base_url else None
        where = f" via `{host}`" if host else ""
        return f"**Judge:** OpenAI `{settings.master_model_name}`{where}"
    return (
        "**Judge:** offline — all-MiniLM-L6-v2 agreement with the reference (no OpenAI key set). "
        "Its model loads on the first grading (a few seconds)."
    )


def for_client(value: Any) -> Any:
    """``value`` with every ``"path"`` key renamed ``"file"``: gradio_client downloads any dict with a "path" string."""
    if isinstance(value, Mapping):
        return {("file" if k == "path" else k): for_client(v) for k, v in value.items()}
    if isinstance(value, list):
        return [for_client(v) for v in value]
    return value


def grading_status(settings: Settings, *, first: bool) -> str:
    """What the progress indicator says while an answer is graded (the offline model loads on first use)."""
    if first and settings.effective_judge_backend == "offline":
        return "Loading the offline judge model (first grading only: a few seconds), then grading…"
    return "Grading your answer…"


def sentiment_status(*, loaded: bool) -> str:
    """What the progress indicator says while feedback is recorded (the sentiment model loads on first use)."""
    if loaded:
        return "Reading the sentiment of your comment…"
    return "Loading the sentiment model (first feedback only), then reading your comment…"


# -- chat -----------------------------------------------------------------------------------------
def question_message(item: QAItem) -> str:
    """The chatbot's message asking ``item``."""
    return (
        f"**Question `{item.id}`** · {_md(item.category)} · {_md(item.difficulty)}\n\n{item.question}\n\n"
        "_Type your answer below._"
    )


def grade_markdown(record: EvaluationRecord) -> str:
    """A graded answer: score and verdict, criteria, feedback, missed points, reference, judge and id."""
    r = record.result
    g = r.grade
    if g is None:
        return judge_failure(record)
    criteria = " · ".join(f"{name} **{g.criteria[name]}**/5" for name in CRITERIA if name in g.criteria)
    lines = [f"### {g.score:.1f}/10 — {g.verdict}{confidence_note(g)}"]
    if g.caveat:
        note = "Confidence: the estimated chance that a human grader calls it correct."
        lines.append(f"<sub>{_md(g.caveat)} {note}</sub>")
    lines += ["", criteria, "", f"**Feedback:** {g.feedback}"]
    if g.missed_points:
        lines += ["", "**Missed points:**", *[f"- {_md(p)}" for p in g.missed_points]]
    lines += ["", f"**Reference answer:** {record.reference}", ""]
    cost = f" · ${r.usage.cost_usd:.6f}" if r.usage.cost_usd else ""
    tokens = f" · {r.usage.total_tokens} tokens" if r.usage.total_tokens else ""
    cached = " · cached" if r.cache_hit else ""
    lines.append(f"<sub>Judge: {r.backend} `{r.model}`{tokens}{cost}{cached} · evaluation id `{record.id}`</sub>")
    return "\n".join(lines)


def confidence_note(grade: Grade) -> str:
    """`` · confidence 82%`` for a grade that carries a calibrated confidence (the offline judge's), else nothing."""
    return "" if grade.confidence is None else f" · confidence {grade.confidence:.0%}"


def judge_failure(record: EvaluationRecord) -> str:
    """The sentence shown when the judge could not grade (the failure is logged too)."""
    reason = (record.result.error or "no reason given").rstrip(".")
    retry = " Please try again in a moment." if record.result.retryable else ""
    return f"The {record.result.backend} judge could not grade this answer: {reason}.{retry}"


def suggestion_markdown(item: QAItem | None) -> str:
    """What the free form says when a question comes without a reference answer."""
    if item is None:
        return "A free-form question needs a reference answer, and no dataset question resembles this one."
    return (
        "A free-form question needs a reference answer. The closest dataset question is "
        f"**`{item.id}`**: {_md(item.question)}\n\nPress **Use this question** to grade against its reference."
    )


# -- dataset --------------------------------------------------------------------------------------
def dataset_rows(items: Sequence[QAItem]) -> list[list[str]]:
    """Rows of the dataset table (:data:`DATASET_HEADERS`), at most :data:`MAX_TABLE_ROWS`."""
    return [[i.id, i.question, i.category, i.difficulty] for i in items[:MAX_TABLE_ROWS]]


def match_count(matches: int, total: int) -> str:
    """The line above the dataset table: how many questions match, and how many are shown."""
    shown = f" (showing the first {MAX_TABLE_ROWS}: search to narrow down)" if matches > MAX_TABLE_ROWS else ""
    verb = "matches" if matches == 1 else "match"
    return f"{matches} of {plural(total, 'question')} {verb}{shown}."


def dataset_summary(dataset: Dataset, *, session: bool) -> str:
    """One line naming the dataset in use and its size."""
    whose = "loaded for this session" if session else "the app's dataset"
    size = f"{plural(len(dataset), 'question')} in {plural(len(dataset.categories), 'category')}"
    return f"Dataset **{_md(dataset.name)}** ({whose}): {size}."


def item_markdown(item: QAItem, history: Mapping[str, Any]) -> str:
    """One question in full, with its evaluation history (count, mean score, last grades)."""
    lines = [
        f"### `{item.id}` · {_md(item.category)} · {_md(item.difficulty)}",
        "",
        f"**Question:** {item.question}",
        "",
        f"**Reference answer:** {item.reference}",
        "",
    ]
    count, graded = history.get("count", 0), history.get("graded", 0)
    if not count:
        lines.append("**History:** not evaluated yet.")
        return "\n".join(lines)
    mean = history.get("mean_score")
    lines.append(f"**History:** {plural(count, 'evaluation')}, {graded} graded, mean score **{_score(mean)}**/10.")
    last = history.get("last") or []
    if last:
        lines += ["", "| when (UTC) | score | verdict | judge | answer |", "|---|---|---|---|---|"]
        for h in last:
            when = (h.get("timestamp") or "")[:19].replace("T", " ")
            score = _score(h.get("score")) if h.get("status") == "ok" else "error"
            lines.append(
                f"| {when} | {score} | {_md(h.get('verdict'))} | {_md(h.get('judge_backend'))} "
                f"| {_md(_short(h.get('answer'), 80))} |"
            )
    return "\n".join(lines)


# -- feedback -------------------------------------------------------------------------------------
def last_grade_markdown(record: EvaluationRecord | None) -> str:
    """Which grade the feedback form is about."""
    if record is None or record.result.grade is None:
        return "No grade yet in this session: answer a question first, or paste an evaluation id."
    g = record.result.grade
    about = f"`{record.question_id}`" if record.question_id else "a free-form question"
    return f"Your last grade: **{g.score:.1f}/10 — {g.verdict}** on {about} (evaluation id `{record.id}`)."


def agree_value(choice: str | None) -> bool | None:
    """The ``agree`` field from the radio choice (:data:`AGREE_CHOICES`)."""
    return {"Agree": True, "Disagree": False}.get(choice or "")


def feedback_markdown(record: FeedbackRecord) -> str:
    """The thank-you line with the comment's sentiment."""
    s = record.sentiment
    return (
        f"Thank you! Sentiment of your comment: **{s.label}** (confidence {s.score:.2f}, {s.backend}). "
        f"Feedback id `{record.id}`."
    )


def feedback_rows(recent: Sequence[tuple[FeedbackRecord, EvaluationRecord | None]]) -> list[list[Any]]:
    """Rows of the recent-feedback table (:data:`FEEDBACK_HEADERS`), from ``Evaluator.recent_feedback_records``."""
    rows = []
    for fb, evaluation in recent:
        agree = {True: "agree", False: "disagree"}.get(fb.agree, "") if fb.agree is not None else ""
        score = evaluation.score if evaluation else None
        grade = f"{_score(score)} {evaluation.verdict or ''}".strip() if evaluation and score is not None else ""
        label = fb.sentiment.label
        rows.append(
            [
                fb.timestamp[:19].replace("T", " "),
                fb.evaluation_id[:12],
                grade,
                agree,
                fb.rating or "",
                f"{label} ({fb.sentiment.score:.2f})" if label else "",
                fb.comment,
                _short(evaluation.question if evaluation else None, 80),
            ]
        )
    return rows


# -- batch ----------------------------------------------------------------------------------------
# Opening sentences a judge writes for every answer alike (the offline judge's similarity figures, and its
# pointer to the missed points): the table's reason column skips them to show what differs per item.
_GENERIC_SENTENCES = ("Meaning agreement with the reference", "Offline similarity estimate", "Not found in the answer:")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")


def _points(value: Any) -> list[str]:
    """A row's ``missed_points`` as a list of strings (a results file may hold anything there)."""
    return [str(p) for p in value if str(p).strip()] if isinstance(value, list) else []


def feedback_gist(row: ResultRow) -> str:
    """What sets one result apart, in a line: the judge's reason (its first specific sentence) and the missed points.

    A failed item shows its error. The judge's sentences that every answer gets (see ``_GENERIC_SENTENCES``) are
    left out; the full feedback is in :func:`batch_row_markdown`.
    """
    if not row.ok:
        return " ".join(str(row.error or "failed, no reason given").split())
    sentences = _SENTENCE_END.split(" ".join(str(row.feedback or "").split()))
    reason = next((s for s in sentences if s and not s.startswith(_GENERIC_SENTENCES)), "")
    missed = _points(row.missed_points)
    parts = [reason, f"Missed: {'; '.join(missed)}" if missed else ""]
    return " ".join(p for p in parts if p) or "No missed points."


def batch_rows(rows: Iterable[ResultRow]) -> list[list[Any]]:
    """Rows of the batch results table (:data:`BATCH_HEADERS`), from batch result rows."""
    return [
        [
            r.line,
            r.question_id or "",
            r.status,
            r.score if r.ok else None,
            r.verdict or "",
            _short(r.answer, 80),
            _short(feedback_gist(r), 200),
        ]
        for r in rows
    ]


def batch_row_markdown(row: ResultRow) -> str:
    """One batch result row in full (the table's row opened): question, answers, grade, feedback, cost, ids."""
    where = " · ".join(_md(str(v)) for v in (row.question_id, row.category) if v)
    lines = [f"### Line {row.line}" + (f" · {where}" if where else ""), ""]
    if row.ok and row.score is not None:
        note = f" · confidence {row.confidence:.0%}" if row.confidence is not None else ""
        lines.append(f"**{row.score:.1f}/10 — {_md(row.verdict)}**{note}")
        criteria = row.criteria or {}
        shown = " · ".join(f"{name} **{criteria[name]}**/5" for name in CRITERIA if name in criteria)
        if shown:
            lines += ["", shown]
    else:
        lines.append(f"**Not graded:** {_md(row.error or 'no reason given')}")
    lines += [
        "",
        f"**Question:** {row.question}",
        "",
        f"**Reference answer:** {row.reference}",
    ]
    by = f" (by `{_md(row.candidate_model)}`)" if row.candidate_model else ""
    lines += ["", f"**Answer{by}:** {row.answer}"]
    if row.feedback:
        lines += ["", f"**Feedback:** {row.feedback}"]
    missed = _points(row.missed_points)
    if missed:
        lines += ["", "**Missed points:**", *[f"- {_md(p)}" for p in missed]]
    if row.caveat:
        lines += ["", f"<sub>{_md(row.caveat)}</sub>"]
    tokens = f" · {row.tokens} tokens" if row.tokens else ""
    cost = f" · ${row.cost_usd:.6f}" if row.cost_usd else ""
    latency = f" · {row.latency_ms:.0f} ms" if row.latency_ms is not None else ""
    judge = f"{_md(row.judge_backend)} `{_md(row.judge_model)}`"
    ids = f"evaluation id `{row.evaluation_id}` · run `{row.batch_id}`"
    lines += ["", f"<sub>Judge: {judge}{tokens}{cost}{latency} · {ids}</sub>"]
    return "\n".join(lines)


def _rate(rate: float) -> str:
    return f"{rate:.2f}" if rate < 1 else f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


def duration(seconds: float) -> str:
    """``seconds`` rounded for a person: ``8 s``, ``3 min``, ``1 h 05 min``."""
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def batch_eta(done: int, total: int, rate: float | None) -> str:
    """``1.5 items/s, about 20 s left`` from the rate of the items finished so far ("" before the first)."""
    if not rate:
        return ""
    return f"{_rate(rate)} items/s, about {duration(max(total - done, 0) / rate)} left"


def batch_stage(done: int, total: int, *, loading: str = "", rate: float | None = None) -> str:
    """The progress bar's label: the loading candidate model, then ``Grading`` with the rate and time left."""
    if loading:
        return loading
    eta = batch_eta(done, total, rate)
    return f"Grading · {eta}" if eta else "Grading"


def batch_progress(
    done: int, total: int, rows: Sequence[ResultRow], *, loading: str = "", rate: float | None = None
) -> str:
    """The running line under the batch table: the loading stage, then items graded, mean score, rate, time left.

    ``loading`` is the stage message while a candidate model loads (no item has started); ``rate`` is items per
    second once one has finished (both from ``jobs.BatchProgress``).
    """
    if loading:
        items = "The item starts" if total == 1 else f"The {plural(total, 'item')} start"
        return f"{loading} {items} once it is loaded (the first batch only)."
    tally = ScoreTally.of(r.score for r in rows if r.ok and r.score is not None).mean(2)
    mean = f", mean score so far {tally:.2f}" if tally is not None else ""
    eta = batch_eta(done, total, rate)
    return f"Graded {done} of {total}{mean}{f' · {eta}' if eta else ''}…"


def batch_summary_markdown(summary_text: str, errors: Sequence[str]) -> str:
    """The finished batch's summary, plus the malformed input rows that were skipped."""
    parts = ["```text", summary_text, "```"]
    if errors:
        parts += ["", f"**{plural(len(errors), 'malformed row')} skipped:**", *[f"- {_md(e)}" for e in errors[:20]]]
        if len(errors) > 20:
            parts.append(f"- … and {len(errors) - 20} more")
    return "\n".join(parts)


# -- dashboard ------------------------------------------------------------------------------------
NO_EVALUATIONS = (
    "**No evaluations yet.** Grade an answer in the *Chat evaluation* tab, through the API or with a batch, "
    "and the charts appear here."
)
SCORE_BINS = [f"{i}–{i + 1}" for i in range(10)] + ["10"]  # the labels of EvalLog's 11-bin score histogram
VERDICT_ORDER = ["all grades", *VERDICTS]
SENTIMENT_COLORS = {"positive": "#22c55e", "neutral": "#9ca3af", "negative": "#ef4444"}


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.1f}%".replace(".0%", "%")


def _usd(amount: float) -> str:
    if not amount:
        return "$0"
    return f"${amount:.4f}" if amount >= 0.01 else f"${amount:.6f}"


def _category(name: str) -> str:
    """A category of the aggregate as shown ("none" there is the category of a question without one)."""
    return UNCATEGORISED if name == "none" else name


def _frame(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    """A pandas DataFrame (what Gradio's native plots take); pandas is imported only when a plot is drawn."""
    import pandas as pd

    return pd.DataFrame(list(rows), columns=list(columns))


def dashboard_data(aggregate: Mapping[str, Any]) -> dict[str, Any]:
    """``EvalLog.aggregate()`` plus its rates per evaluation: what ``/dashboard`` and ``stats --json`` return."""
    n = aggregate["evaluations"]
    return {
        **aggregate,
        "rates": {
            "error_rate": _ratio(aggregate["errors"], n),
            "cache_hit_rate": _ratio(aggregate["cache_hits"], n),
            "tokens_per_evaluation": round(aggregate["tokens"]["total"] / n, 1) if n else None,
            "cost_per_evaluation_usd": round(aggregate["cost_usd"] / n, 8) if n else None,
        },
    }


def _judge_line(judge: Mapping[str, Any]) -> str:
    """One judge's share: ``openai gpt-4o-mini: 12 evaluations, 9,120 tokens, $0.0021``."""
    return (
        f"{judge['backend']} {judge['model']}: {plural(judge['evaluations'], 'evaluation')}, "
        f"{judge['tokens']:,} tokens, {_usd(judge['cost_usd'])}"
    )


def dashboard_headline(data: Mapping[str, Any]) -> str:
    """The dashboard's Markdown headline: evaluations, mean score, cost and agreement, then the other figures."""
    n, rates, agreement = data["evaluations"], data["rates"], data["agreement"]
    damaged = data["damaged_lines"]
    were = "was" if damaged == 1 else "were"
    damage = f"\n\n⚠️ {plural(damaged, 'damaged log line')} {were} skipped." if damaged else ""
    if not n:
        return NO_EVALUATIONS + damage
    rated = agreement["rated"]
    agree = f"{agreement['agree']} of {rated} rated feedback agree with the grade" if rated else "no ratings yet"
    ratings = data["ratings"]
    rating = f", mean rating {ratings['mean']:.1f}/5" if ratings["count"] else ""
    judges = "; ".join(_md(_judge_line(j)) for j in data["judges"])
    return "\n".join(
        [
            f"### {plural(n, 'evaluation')} · mean score {_score(data['mean_score'])}/10 · "
            f"cost {_usd(data['cost_usd'])} · agreement {_pct(agreement['rate'])}",
            "",
            f"Judge/human agreement: {agree} · {data['feedback']} feedback{rating}",
            "",
            f"{data['ok']} graded, {data['errors']} failed (error rate {_pct(rates['error_rate'])}) · "
            f"cache hits {data['cache_hits']} ({_pct(rates['cache_hit_rate'])}) · "
            f"{data['tokens']['total']:,} tokens ({rates['tokens_per_evaluation']:g} per evaluation), "
            f"{_usd(rates['cost_per_evaluation_usd'])} per evaluation · judges: {judges} · "
            f"{plural(damaged, 'damaged log line')}",
        ]
    )


def score_frame(data: Mapping[str, Any]) -> Any:
    """Score distribution: ``score`` bin label (:data:`SCORE_BINS`) and ``evaluations`` in it (empty: none graded)."""
    rows = list(zip(SCORE_BINS, data["score_histogram"], strict=True)) if data["ok"] else []
    return _frame(["score", "evaluations"], rows)


def verdict_frame(data: Mapping[str, Any]) -> Any:
    """Graded ``evaluations`` per ``verdict`` (empty: none graded)."""
    return _frame(["verdict", "evaluations"], list(data["verdicts"].items()) if data["ok"] else [])


def days_frame(data: Mapping[str, Any]) -> Any:
    """Scores over time: ``date`` (UTC, datetime), ``day`` (its ``YYYY-MM-DD`` label), ``mean score``, ``evaluations``.

    ``evaluations`` counts the graded ones; a line plots over ``date``, bars (one per day) over ``day``.
    """
    import pandas as pd

    days = [d for d in data["scores_by_day"] if d["date"] != "unknown"]
    rows = [(d["date"], d["date"], d["mean_score"], d["count"]) for d in days]
    frame = _frame(["date", "day", "mean score", "evaluations"], rows)
    frame["date"] = pd.to_datetime(frame["date"], format="%Y-%m-%d")
    return frame


def days_as_line(frame: Any) -> bool:
    """True when the days frame can be drawn as a line: a line needs two days (with one, draw the point)."""
    return len(frame) >= 2


def category_frame(data: Mapping[str, Any]) -> Any:
    """Per-category mean score and graded ``evaluations`` (questions without one under :data:`UNCATEGORISED`)."""
    rows = [(_category(name), c["mean_score"], c["count"]) for name, c in data["categories"].items()]
    return _frame(["category", "mean score", "evaluations"], rows)


def agreement_frame(data: Mapping[str, Any]) -> Any:
    """Judge/human agreement in % of rated feedback: over all grades, then per verdict (rows with ratings only)."""
    a = data["agreement"]
    cells = [("all grades", a), *a["by_verdict"].items()]
    rows = [(name, round(100 * c["agree"] / c["rated"], 1), c["rated"]) for name, c in cells if c["rated"]]
    return _frame(["grade", "agreement %", "rated"], rows)


def sentiment_frame(data: Mapping[str, Any]) -> Any:
    """Sentiment of feedback comments: ``sentiment`` label, its ``share %`` and ``feedback`` count."""
    s = data["sentiment"]
    order = {label: n for n, label in enumerate(SENTIMENT_COLORS)}
    labels = sorted(s["counts"], key=lambda k: (order.get(k, len(order)), k))
    rows = [(label, round(100 * s["share"][label], 1), s["counts"][label]) for label in labels]
    return _frame(["sentiment", "share %", "feedback"], rows)


def backend_frame(data: Mapping[str, Any]) -> Any:
    """Evaluations per judge backend."""
    return _frame(["judge", "evaluations"], list(data["backends"].items()))


def stats_text(data: Mapping[str, Any]) -> str:
    """The dashboard as plain text for a terminal (``python -m evaluator stats``)."""
    n, rates, a = data["evaluations"], data["rates"], data["agreement"]
    lines = [
        f"Evaluations: {n} ({data['ok']} graded, {data['errors']} failed: error rate {_pct(rates['error_rate'])})   "
        f"Feedback: {data['feedback']}   Damaged log lines: {data['damaged_lines']}"
    ]
    if not n:
        lines.append("No evaluations yet.")
        return "\n".join(lines)
    histogram = " ".join(f"{label}:{count}" for label, count in zip(SCORE_BINS, data["score_histogram"], strict=True))
    lines += [
        f"Mean score: {_score(data['mean_score'], 2)}/10",
        f"Score distribution: {histogram}",
        "Verdicts: " + ", ".join(f"{v} {c}" for v, c in data["verdicts"].items()),
        "Per category: "
        + ", ".join(
            f"{_category(k)} {_score(c['mean_score'], 2)} (n={c['count']})" for k, c in data["categories"].items()
        ),
        "Per day: "
        + ", ".join(f"{d['date']} {_score(d['mean_score'], 2)} (n={d['count']})" for d in data["scores_by_day"]),
    ]
    by_verdict = ", ".join(f"{v} {_pct(c['rate'])} of {c['rated']}" for v, c in a["by_verdict"].items() if c["rated"])
    lines.append(
        f"Judge/human agreement: {_pct(a['rate'])} ({a['agree']} of {a['rated']} rated)"
        + (f"; {by_verdict}" if by_verdict else "")
    )
    ratings, s = data["ratings"], data["sentiment"]
    if ratings["count"]:
        lines.append(f"Ratings: {ratings['count']}, mean {ratings['mean']:.2f}/5")
    if s["counts"]:
        lines.append(
            "Sentiment: " + ", ".join(f"{k} {_pct(s['share'][k])} ({c})" for k, c in sorted(s["counts"].items()))
        )
    t = data["tokens"]
    lines += [
        f"Tokens: {t['total']:,} (prompt {t['prompt']:,}, completion {t['completion']:,}), "
        f"{rates['tokens_per_evaluation']:g} per evaluation",
        f"Cost: {_usd(data['cost_usd'])}, {_usd(rates['cost_per_evaluation_usd'])} per evaluation",
        f"Cache hits: {data['cache_hits']} ({_pct(rates['cache_hit_rate'])})",
        "Judge backends: " + ", ".join(f"{k} {v}" for k, v in data["backends"].items()),
        *(_judge_line(j) for j in data["judges"]),
    ]
    return "\n".join(lines)
