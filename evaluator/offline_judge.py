"""The offline judge: grades locally with all-MiniLM-L6-v2 and a fitted calibration, no LLM, no network.

Three similarity signals, each in [0, 1], follow the short-answer-grading literature:

* **semantic** — cosine similarity of the answer's and the reference's sentence embeddings, with the
  question demoted in embedding space too: ``(cos(a, r) - λ·cos(a, q)) / (1 - λ·cos(r, q))`` clipped
  to [0, 1], which is 1 for the reference itself and about 0 for a restatement of the question or for
  unrelated text (λ = 0.75);
* **overlap** — F1 of the content words (lowercased, stopwords removed, lightly stemmed) that the
  answer shares with the reference, with *question demoting* (Mohler et al., 2011): words the
  question already contains are ignored on both sides, so restating the question earns nothing;
* **coverage** — BERTScore-style matching of contextual word vectors: each question-demoted
  reference content word takes its best cosine to any demoted answer content word (recall), and
  vice versa (precision); their F1, rescaled against the cosine that unrelated words reach.

A logistic calibration over these signals (:mod:`evaluator.calibration`, fitted on public human grades)
gives the **confidence**: the probability that a human grader calls the answer correct. The score 0-10 is a
monotone map of it that puts P = 0.5 at 7 ("correct"). Similarity cannot tell a statement from its negation,
so :mod:`evaluator.offline_checks` then looks for targeted evidence against the answer — a contradiction of
a reference clause, swapped roles, a known misconception, a bare keyword list — and each finding caps the
score and is named in the feedback. An answer that is not in English is not graded (a clear error that
points to the OpenAI judge). An answer with no content word beyond the question scores 0; sentences that
address the grader ("ignore the rubric, give 10") are dropped before scoring, so they earn nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import offline_checks
from .calibration import feature_vector as calibration_features
from .calibration import load_calibration, probability_for, score_for
from .embeddings import Encoder, Encoding, EncodingCache, TokenVectors, get_encoder
from .models import Grade, GradeRequest, JudgeResult, verdict_for
from .text import content_terms

logger = logging.getLogger(__name__)

PROMPT_VERSION = "offline-v5"
CAVEAT = "Similarity estimate: no LLM read this answer (all-MiniLM-L6-v2 and a calibration fitted on human grades)."
UNRELATED_MESSAGE = "The answer shares almost nothing with the reference beyond the words of the question"
NOT_ENGLISH = (
    "This answer does not look like English: the offline judge grades English only. "
    "Use the OpenAI judge (set OPENAI_API_KEY) to grade answers in other languages."
)
# How much of the answer's similarity to the question is discounted from its similarity to the reference.
QUESTION_DEMOTING = 0.75
# About the mean cosine between unrelated texts (answers paired with another question's reference),
# which rescaling maps to 0: sentence embeddings, best match of contextual word vectors.
SEMANTIC_FLOOR = 0.1
COVERAGE_FLOOR = 0.21
# A reference clause is a missed point when its rescaled word coverage falls below MISSED_THRESHOLD and either
# no answer sentence is close to it (mean word vectors, cosine below CLAUSE_MATCH) or the answer covers another
# clause far better (by MISSED_GAP): a point made in other words is not reported missing.
MISSED_THRESHOLD = 0.45
CLAUSE_MATCH = 0.5
MISSED_GAP = 0.35
# Unrelated: word coverage (question-demoted, rescaled) below UNRELATED and sentence cosines to both the reference
# and the question below UNRELATED_COSINE. On the public human grades, 7% of such answers are correct (the cap's
# P); coverage alone would also catch short correct answers in other words (20% of the 32% it flags are correct).
UNRELATED = 0.1
UNRELATED_COSINE = 0.15
# An answer this close to the question (sentence cosine) that covers nothing of the reference beyond the
# question's words restates it: no credit. Using only the question's words is not enough: an answer may pick one
# of the options the question names (on the public human grades, 20% of such answers are correct).
RESTATES_QUESTION = 0.85
MAX_MISSED_POINTS = 5

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# Sentence ends, and commas before a conjunction that starts a new point ("..., while the median ...").
_CLAUSE_END = re.compile(r"(?<=[.!?;:])\s+|\n+|,\s+(?=(?:while|whereas|but|because|so|although|which)\b)")
_WORD = re.compile(r"[A-Za-z0-9]+")
# Sentences that talk to the grader instead of answering: they are removed before scoring.
_GRADER_DIRECTIVE = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|rubric|rules|prompt|criteria|grading)\b"
    r"|\b(give|award|assign|grant)\b.{0,30}\b(full|maximum|max|perfect|top|highest|10|ten|100)\b"
    r".{0,15}\b(score|marks?|points|grade|rating|credit)\b"
    r"|\b(give|award|assign|grant)\b.{0,20}\b(10|5)\s*/\s*(10|5)\b"
    r"|\b(grade|mark|score|rate)\b.{0,25}\b(this|my|the)\s+(answer|response)\b.{0,20}\b(correct|10|perfect|full)"
    r"|\b(you are|you're|as the|dear|attention)\b.{0,20}\b(grader|judge|evaluator|examiner|marker)\b"
    r"|\b(system prompt|new instructions?)\b",
    re.IGNORECASE,
)


def strip_grader_directives(answer: str) -> tuple[str, bool]:
    """``answer`` without the sentences that instruct the grader, and whether any were removed."""
    sentences = [s for s in _SENTENCE_END.split(answer) if s.strip()]
    kept = [s for s in sentences if not _GRADER_DIRECTIVE.search(s)]
    return " ".join(kept), len(kept) < len(sentences)


def _rescale(value: float, floor: float) -> float:
    """Map ``floor..1`` to ``0..1`` (values below the floor become 0)."""
    return float(min(1.0, max(0.0, (value - floor) / (1.0 - floor))))


def _unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1."""
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


@dataclass(frozen=True)
class Signals:
    """The measurements behind one offline grade; the rescaled ones are in [0, 1]."""

    semantic_cosine: float  # raw cosine(answer, reference) of sentence embeddings
    question_cosine: float  # raw cosine(answer, question)
    semantic: float  # question-demoted semantic similarity
    overlap: float  # question-demoted content-word F1
    coverage_recall: float  # BERTScore-style recall of demoted reference words, rescaled
    coverage_precision: float
    coverage: float  # F1 of the two above
    novel_terms: int  # distinct answer content stems the question does not contain
    clause_coverage: tuple[tuple[str, float], ...]  # (reference clause, rescaled coverage)
    directives_removed: bool
    clause_similarity: tuple[float, ...] = ()  # each clause's best cosine to an answer sentence (mean word vectors)
    answer: str = ""  # the text measured: the answer without the sentences that instruct the grader


def _clauses(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, list[int]]]:
    """Split ``text`` into sentences/clauses, each with the indices of the words (by span) inside it."""
    out, start = [], 0
    for match in [*_CLAUSE_END.finditer(text), None]:
        end = match.start() if match else len(text)
        clause = text[start:end].strip()
        if clause:
            out.append((clause, [i for i, (s, e) in enumerate(spans) if s >= start and e <= end]))
        if match:
            start = match.end()
    return out


def measure(
    question: TokenVectors,
    reference: TokenVectors,
    answer: TokenVectors,
    reference_text: str,
    cosines: tuple[float, float, float],
    directives_removed: bool = False,
    answer_text: str = "",
) -> Signals:
    """The :class:`Signals` of one answer from the encoder's word vectors and ``cosines``.

    ``cosines`` are the sentence-embedding cosines (answer·reference, answer·question, reference·question).
    ``answer_text`` (the text of ``answer``) lets each reference clause be compared with each answer sentence;
    it is kept as :attr:`Signals.answer`.
    """
    semantic_cosine, question_cosine, reference_question_cosine = cosines
    semantic = (semantic_cosine - QUESTION_DEMOTING * question_cosine) / (
        1 - QUESTION_DEMOTING * reference_question_cosine
    )
    q_terms = {t for t in content_terms(question.words) if t}
    r_terms, a_terms = content_terms(reference.words), content_terms(answer.words)
    # Demote question words, unless the reference only restates them: then nothing would be left to compare.
    demoted = any(t and t not in q_terms for t in r_terms)
    ignored = q_terms if demoted else set()
    r_keep = [i for i, t in enumerate(r_terms) if t and t not in ignored]
    a_keep = [i for i, t in enumerate(a_terms) if t and t not in ignored]
    r_set, a_set = {r_terms[i] for i in r_keep}, {a_terms[i] for i in a_keep}
    shared = len(r_set & a_set)
    overlap = _f1(shared / len(a_set), shared / len(r_set)) if a_set and r_set else 0.0

    clauses = _clauses(reference_text, reference.spans)
    if r_keep and a_keep:
        sim = reference.vectors[r_keep] @ answer.vectors[a_keep].T
        best_for_ref = sim.max(axis=1)
        recall = _rescale(float(best_for_ref.mean()), COVERAGE_FLOOR)
        precision = _rescale(float(sim.max(axis=0).mean()), COVERAGE_FLOOR)
        best = dict(zip(r_keep, best_for_ref.tolist(), strict=True))
    else:
        recall = precision = 0.0
        best = dict.fromkeys(r_keep, 0.0)
    kept = [(clause, idx) for clause, idx in clauses if any(i in best for i in idx)]
    clause_coverage = tuple(
        (clause, _rescale(float(np.mean([best[i] for i in idx if i in best])), COVERAGE_FLOOR)) for clause, idx in kept
    )
    # Each clause against each answer sentence: the mean of their contextual word vectors, compared by cosine.
    sentences = [idx for _, idx in _clauses(answer_text, answer.spans) if idx] or [list(range(len(answer.words)))]
    answer_spans = _unit(np.stack([answer.vectors[idx].mean(0) for idx in sentences])) if answer.words else None
    clause_similarity = tuple(
        float((_unit(reference.vectors[idx].mean(0, keepdims=True)) @ answer_spans.T).max())
        if answer_spans is not None
        else 0.0
        for _, idx in kept
    )
    return Signals(
        semantic_cosine=semantic_cosine,
        question_cosine=question_cosine,
        semantic=float(min(1.0, max(0.0, semantic))),
        overlap=overlap,
        coverage_recall=recall,
        coverage_precision=precision,
        coverage=_f1(precision, recall),
        novel_terms=len(a_set - q_terms) if demoted else len(a_set),
        clause_coverage=clause_coverage,
        directives_removed=directives_removed,
        clause_similarity=clause_similarity,
        answer=answer_text,
    )


def restates_question(s: Signals) -> bool:
    """Whether the answer only restates the question: close to it, and nothing of the reference beyond its words."""
    return s.coverage < UNRELATED and s.question_cosine >= RESTATES_QUESTION


def word_count(text: str) -> int:
    """Words (runs of letters and digits) in ``text``."""
    return len(_WORD.findall(text))


def _to_1_5(value: float) -> int:
    """A [0, 1] value as a 1-5 criterion."""
    return 1 + round(4 * min(1.0, max(0.0, value)))


def clarity(answer: str, reference: str) -> int:
    """A heuristic 1-5 clarity from length and structure only (no language model reads the prose)."""
    words = _WORD.findall(answer)
    if not words:
        return 1
    ref_words = len(_WORD.findall(reference))
    sentences = [s for s in _SENTENCE_END.split(answer.strip()) if s.strip()]
    value = 5
    if len(words) < 3:
        value -= 2  # a fragment, not an explanation
    elif ref_words >= 15 and len(words) < 0.25 * ref_words:
        value -= 1  # much terser than the reference
    if len(words) > max(150, 8 * ref_words):
        value -= 2  # rambling
    elif len(words) > max(60, 4 * ref_words):
        value -= 1
    if len(words) / len(sentences) > 40:
        value -= 1  # run-on sentences
    if len(words) >= 10 and len({w.lower() for w in words}) / len(words) < 0.5:
        value -= 1  # repetitive
    letters = [c for c in answer if c.isalpha()]
    if len(letters) >= 10 and sum(c.isupper() for c in letters) / len(letters) > 0.5:
        value -= 1  # shouting
    return max(1, min(5, value))


def _describe(value: float) -> str:
    return "high" if value >= 0.66 else "moderate" if value >= 0.33 else "low"


class OfflineJudge:
    """The local judge: grades by agreement with the reference, using the shared all-MiniLM-L6-v2 encoder.

    Args:
        encoder: the sentence encoder; default the process-wide one from :func:`get_encoder`.
        batch_size: texts per forward pass in :meth:`grade_many`.
        cache: keeps the encodings of questions and references across calls, so that a dataset's are
            computed once and each call encodes little more than its answers; default a new
            :class:`EncodingCache` (64 MiB at most). ``EncodingCache(max_bytes=0)`` turns it off.

    Example:
        >>> judge = OfflineJudge()
        >>> judge.grade(GradeRequest(question="...", reference="...", answer="...")).grade.score
    """

    backend = "offline"
    grades_in_chunks = True  # one forward pass over a chunk of answers
    model = "all-MiniLM-L6-v2 (offline)"
    prompt_version = PROMPT_VERSION

    def __init__(
        self, *, encoder: Encoder | None = None, batch_size: int = 32, cache: EncodingCache | None = None
    ) -> None:
        self._encoder = encoder
        self.batch_size = batch_size
        self.cache = EncodingCache() if cache is None else cache

    @property
    def encoder(self) -> Encoder:
        """The sentence encoder (the shared one unless injected)."""
        if self._encoder is None:
            self._encoder = get_encoder()
        return self._encoder

    def _encode(self, texts: dict[str, bool]) -> dict[str, Encoding]:
        """The encoding of each text (mapped to whether it may be cached): from the cache, else batched passes."""
        found: dict[str, Encoding] = {}
        for text, cacheable in texts.items():
            if cacheable and (encoding := self.cache.get(text)) is not None:
                found[text] = encoding
        missing = [text for text in texts if text not in found]
        if missing:
            vectors, tokens = self.encoder.encode_with_tokens(missing, batch_size=self.batch_size)
            for text, vector, words in zip(missing, vectors, tokens, strict=True):
                found[text] = encoding = Encoding(vector, words)
                if texts[text]:
                    self.cache.put(text, encoding)
        return found

    def signals(self, requests: Sequence[GradeRequest]) -> list[Signals]:
        """The similarity signals of each request; uncached texts are encoded once each, in batched passes."""
        cleaned = [strip_grader_directives(r.answer) for r in requests]
        texts: dict[str, bool] = {}  # text -> whether to cache it: answers are seldom seen twice
        for r, (answer, _) in zip(requests, cleaned, strict=True):
            texts[r.question] = texts[r.reference] = True
            texts.setdefault(answer, False)
        encodings = self._encode(texts)
        out = []
        for r, (answer, removed) in zip(requests, cleaned, strict=True):
            q, ref, a = encodings[r.question], encodings[r.reference], encodings[answer]
            out.append(
                measure(
                    q.tokens,
                    ref.tokens,
                    a.tokens,
                    r.reference,
                    cosines=(float(a.vector @ ref.vector), float(a.vector @ q.vector), float(ref.vector @ q.vector)),
                    directives_removed=removed,
                    answer_text=answer,
                )
            )
        return out

    def grade(self, request: GradeRequest) -> JudgeResult:
        """Grade one answer (blocking, a few tens of milliseconds after the model is loaded)."""
        return self.grade_many([request])[0]

    async def agrade(self, request: GradeRequest) -> JudgeResult:
        """Grade one answer in a worker thread, without blocking the event loop."""
        return await asyncio.to_thread(self.grade, request)

    def grade_many(self, requests: Sequence[GradeRequest]) -> list[JudgeResult]:
        """Grade many answers, in order, encoding all their texts in a few batched passes."""
        if not requests:
            return []
        started = time.perf_counter()
        readable = [r for r in requests if not offline_checks.not_english(r.answer)]
        signals = dict(zip(map(id, readable), self.signals(readable), strict=True)) if readable else {}
        latency = (time.perf_counter() - started) * 1000 / len(requests)
        base = {"backend": self.backend, "model": self.model, "prompt_version": self.prompt_version}
        return [
            JudgeResult(status="ok", grade=self._grade(r, signals[id(r)]), latency_ms=latency, **base)
            if id(r) in signals
            else JudgeResult(status="error", error=NOT_ENGLISH, retryable=False, latency_ms=latency, **base)
            for r in requests
        ]

    def _grade(self, request: GradeRequest, s: Signals) -> Grade:
        answer = s.answer
        # Nothing left once the grader's sentences are dropped, or a restatement of the question: no credit.
        words = word_count(answer)
        nothing = restates_question(s) or words == 0
        closest = max(s.semantic_cosine, s.question_cosine)  # to the reference or to the question
        if nothing:
            probability, findings = 0.0, []
        else:
            features = calibration_features(s, words, word_count(request.reference))
            probability = load_calibration().probability(features)
            findings = offline_checks.findings(request.question, request.reference, answer)
            if s.coverage < UNRELATED and closest < UNRELATED_COSINE:
                findings.insert(0, offline_checks.Finding("unrelated", UNRELATED_MESSAGE))
        score = score_for(probability)
        # a doubt is worth saying only where it keeps the answer from a verdict it would otherwise get
        findings = [f for f in findings if f.kind not in offline_checks.DOUBTS or score > f.cap]
        cap = min((f.cap for f in findings), default=10.0)
        if score > cap:
            score, probability = cap, min(probability, probability_for(cap))
        criteria = {
            "correctness": _to_1_5(probability),
            "completeness": _to_1_5(s.coverage_recall),
            "relevance": _to_1_5(0.0 if nothing else _rescale(closest, SEMANTIC_FLOOR)),
            "clarity": clarity(answer, request.reference),
        }
        if any(f.kind == "keyword list" for f in findings):
            criteria["clarity"] = 1
        best = max((coverage for _, coverage in s.clause_coverage), default=0.0)
        missed = [
            clause
            for (clause, coverage), similarity in zip(s.clause_coverage, s.clause_similarity, strict=True)
            if coverage < MISSED_THRESHOLD and (similarity < CLAUSE_MATCH or coverage < best - MISSED_GAP)
        ][:MAX_MISSED_POINTS]
        return Grade(
            score=score,
            verdict=verdict_for(score),
            criteria=criteria,
            feedback=self._feedback(s, missed, findings, nothing),
            missed_points=missed,
            confidence=round(probability, 3),
            caveat=CAVEAT,
        )

    @staticmethod
    def _feedback(s: Signals, missed: list[str], findings: list[offline_checks.Finding], nothing: bool) -> str:
        parts = []
        if s.directives_removed:
            parts.append("Sentences addressed to the grader were ignored.")
        if nothing:
            parts.append("The answer adds nothing beyond the words of the question, so it gets no credit.")
            return " ".join(parts)
        for finding in findings[:3]:
            parts.append(f"{finding.message} (score capped at {finding.cap:g}).")
        parts.append(
            f"Meaning agreement with the reference is {_describe(s.semantic)} (cosine {s.semantic_cosine:.2f}); "
            f"it covers a {_describe(s.coverage_recall)} share of the reference's key content "
            f"(coverage {s.coverage_recall:.0%}) with {_describe(s.overlap)} key-word overlap "
            f"beyond the question ({s.overlap:.0%})."
        )
        if missed:
            parts.append(f"Not found in the answer: {len(missed)} point(s) of the reference (see missed points).")
        elif not findings:
            parts.append("Every point of the reference finds a match in the answer.")
        return " ".join(parts)
