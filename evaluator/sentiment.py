"""Sentiment of feedback comments: a transformers pipeline, with VADER when the model cannot be loaded.

``SENTIMENT_MODEL_NAME`` (a Hub model id or a local directory) is loaded with
``transformers.pipeline("sentiment-analysis", ...)`` on first use, once, under a lock. Its labels are
mapped to negative/neutral/positive; a two-label model such as the default SST-2 DistilBERT has no
neutral class, so it only ever says negative or positive.

Loading is bounded in time: a local directory is used as is; a Hub id is looked up in the local
Hugging Face cache first (no network); only when it is not cached and offline mode
(``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``) is off is the Hub probed once with a short timeout
before transformers downloads it. Any failure (no network, unknown id, no weights, labels that are not
sentiments) switches to VADER, whose lexicon ships in the ``vaderSentiment`` package; the reason is
logged once and every result names its backend.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .models import Sentiment

logger = logging.getLogger(__name__)

LABELS = ("negative", "neutral", "positive")
# VADER's authors' thresholds on the compound score (Hutto & Gilbert 2014, vaderSentiment README).
VADER_THRESHOLD = 0.05
# One quick request decides whether the Hub is reachable; transformers' own retries took 23 s to give up here.
HUB_PROBE_TIMEOUT_SECONDS = 5.0
_TRUE = {"1", "on", "yes", "true"}
_SYNONYMS = {"negative": "negative", "neg": "negative", "neutral": "neutral", "neu": "neutral"}
_SYNONYMS |= {"positive": "positive", "pos": "positive"}
_GENERIC = re.compile(r"label_(\d+)")
_STARS = re.compile(r"([1-5]) stars?")
_BY_INDEX = {2: ("negative", "positive"), 3: ("negative", "neutral", "positive")}

PipelineFactory = Callable[..., Any]


class _Unavailable(Exception):
    """The sentiment model cannot be loaded here; the message says why (it never carries a secret)."""


def map_label(label: str, num_labels: int) -> str | None:
    """negative/neutral/positive for a model's label, or None when it is not a sentiment.

    Handles POSITIVE/NEGATIVE/NEUTRAL (any case, or pos/neg/neu), generic ``LABEL_k`` names by the usual
    index order (2 labels: negative, positive; 3 labels: negative, neutral, positive) and "1 star".."5 stars".
    """
    name = label.strip().lower()
    if name in _SYNONYMS:
        return _SYNONYMS[name]
    if (match := _GENERIC.fullmatch(name)) and num_labels in _BY_INDEX:
        order = _BY_INDEX[num_labels]
        index = int(match.group(1))
        return order[index] if index < len(order) else None
    if match := _STARS.fullmatch(name):
        stars = int(match.group(1))
        return "negative" if stars <= 2 else "neutral" if stars == 3 else "positive"
    return None


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is set (read now, not at import)."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything else is meant as a folder.
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def _resolve_model_source(model_name: str, *, probe_timeout: float = HUB_PROBE_TIMEOUT_SECONDS) -> str:
    """What to hand to ``pipeline(model=...)``: a local folder, or a Hub id known to be reachable.

    Raises :class:`_Unavailable` quickly instead of letting transformers retry an unreachable Hub.
    """
    if not model_name.strip():
        raise _Unavailable("no model name is set")
    path = Path(model_name).expanduser()
    if path.is_dir():
        return str(path)
    if _looks_like_path(model_name):
        raise _Unavailable(f"the folder {model_name} does not exist")
    from huggingface_hub import model_info, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return snapshot_download(model_name, local_files_only=True)
    except HFValidationError:
        raise _Unavailable(f"{model_name!r} is neither a folder nor a valid Hub model id") from None
    except LocalEntryNotFoundError:
        pass
    if hub_offline():
        raise _Unavailable("it is not in the local Hugging Face cache and offline mode (HF_HUB_OFFLINE) is on")
    try:
        model_info(model_name, timeout=probe_timeout)
    except Exception as exc:  # network errors, 401/404...: all mean "not loadable from here"
        raise _Unavailable(f"the Hugging Face Hub did not provide it ({type(exc).__name__})") from None
    return model_name


def _short(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300]


class SentimentAnalyzer:
    """Reads the sentiment of comments, many at a time; thread-safe, loads its model on first use.

    Args:
        model_name: ``SENTIMENT_MODEL_NAME``, a Hub model id or a local folder.
        pipeline_factory: builds the pipeline, called like ``transformers.pipeline`` (the default).
        batch_size: texts per forward pass when classifying a list.

    Example:
        >>> SentimentAnalyzer("distilbert-base-uncased-finetuned-sst-2-english").analyze("thx, fair grade!")
        Sentiment(label='positive', score=0.99..., backend='transformers:distilbert-...')
    """

    def __init__(
        self, model_name: str, *, pipeline_factory: PipelineFactory | None = None, batch_size: int = 32
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model_name = model_name
        self.batch_size = batch_size
        self.fallback_reason: str | None = None
        self._pipeline_factory = pipeline_factory
        self._pipeline: Any = None
        self._label_map: dict[str, str] = {}
        self._vader: Any = None
        self._backend: str | None = None
        self._load_lock = threading.Lock()
        # A fast tokenizer is not re-entrant, and on 2 cores parallel forward passes only contend.
        self._call_lock = threading.Lock()

    @property
    def backend(self) -> str:
        """``transformers:<model name>`` or ``vader`` (loads the model if that has not happened yet)."""
        self._ensure_loaded()
        assert self._backend is not None
        return self._backend

    @property
    def loaded_backend(self) -> str | None:
        """The active backend, or None while nothing is loaded (never triggers a load)."""
        return self._backend

    def analyze(self, text: str) -> Sentiment:
        """The sentiment of one text."""
        return self.analyze_many([text])[0]

    def analyze_many(self, texts: Sequence[str]) -> list[Sentiment]:
        """The sentiment of each text, in order; the model sees them in batches of ``batch_size``."""
        self._ensure_loaded()
        if not texts:
            return []
        if self._pipeline is not None:
            return self._classify(list(texts))
        return [self._vader_sentiment(text) for text in texts]

    # -- loading ---------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._backend is not None:
            return
        with self._load_lock:
            if self._backend is not None:
                return
            try:
                self._load_pipeline()
            except Exception as exc:  # whatever stops the model, VADER still answers
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                self.fallback_reason = exc.args[0] if isinstance(exc, _Unavailable) else _short(exc)
                logger.warning(
                    "Sentiment model %s could not be loaded (%s); using VADER instead.",
                    self.model_name,
                    self.fallback_reason,
                )
                self._vader = SentimentIntensityAnalyzer()
                self._backend = "vader"
            else:
                self._backend = f"transformers:{self.model_name}"
                logger.info("Sentiment model %s loaded.", self.model_name)

    def _load_pipeline(self) -> None:
        source = _resolve_model_source(self.model_name)
        factory = self._pipeline_factory
        if factory is None:
            from transformers import pipeline as factory
        pipe = factory("sentiment-analysis", model=source)
        id2label: Mapping[int, str] = pipe.model.config.id2label
        label_map = {name: map_label(name, len(id2label)) for name in id2label.values()}
        unknown = sorted(name for name, label in label_map.items() if label is None)
        if unknown:
            raise _Unavailable(f"its labels {unknown} are not negative/neutral/positive")
        # A tokenizer saved without a maximum length would let long comments overflow the position embeddings.
        max_positions = getattr(pipe.model.config, "max_position_embeddings", None)
        if max_positions and pipe.tokenizer.model_max_length > max_positions:
            pipe.tokenizer.model_max_length = max_positions
        self._label_map = {name: label for name, label in label_map.items() if label is not None}
        self._pipeline = pipe

    # -- classification --------------------------------------------------------------------
    def _classify(self, texts: list[str]) -> list[Sentiment]:
        # Texts of similar length share a batch, so little compute goes to padding; results return in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._call_lock:
            outputs = self._pipeline([texts[i] for i in order], batch_size=self.batch_size, truncation=True, top_k=None)
        backend = f"transformers:{self.model_name}"
        by_input = {i: self._to_sentiment(scores, backend) for i, scores in zip(order, outputs, strict=True)}
        return [by_input[i] for i in range(len(texts))]

    def _to_sentiment(self, scores: list[dict[str, Any]], backend: str) -> Sentiment:
        # Sum the probabilities of labels that map to the same sentiment (e.g. "1 star" + "2 stars").
        totals = dict.fromkeys(LABELS, 0.0)
        for item in scores:
            totals[self._label_map[item["label"]]] += float(item["score"])
        label = max(totals, key=totals.__getitem__)
        return Sentiment(label=label, score=min(max(totals[label], 0.0), 1.0), backend=backend)

    def _vader_sentiment(self, text: str) -> Sentiment:
        # Confidence: for positive/negative, the strength |compound| of VADER's normalised score;
        # for neutral, the share of the text that is neither positive nor negative (1 - pos - neg).
        scores = self._vader.polarity_scores(text)
        compound = scores["compound"]
        if compound >= VADER_THRESHOLD:
            return Sentiment("positive", min(compound, 1.0), "vader")
        if compound <= -VADER_THRESHOLD:
            return Sentiment("negative", min(-compound, 1.0), "vader")
        return Sentiment("neutral", min(max(1.0 - scores["pos"] - scores["neg"], 0.0), 1.0), "vader")


_shared: dict[str, SentimentAnalyzer] = {}
_shared_lock = threading.Lock()


def get_analyzer(model_name: str) -> SentimentAnalyzer:
    """The process-wide analyzer for ``model_name``: created on first call, its model loaded on first use."""
    with _shared_lock:
        analyzer = _shared.get(model_name)
        if analyzer is None:
            analyzer = _shared[model_name] = SentimentAnalyzer(model_name)
        return analyzer
