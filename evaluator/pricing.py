"""Judge token prices (USD per 1M tokens) and the cost of one call.

List prices of OpenAI's standard tier (mid-2025), uncached input; the Batch API bills half of them
(``batch=True``). Unknown models (self-hosted vLLM/TGI/Ollama models, new names) cost 0, with a note
logged once per model name.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from .models import Usage

logger = logging.getLogger(__name__)

# No single call spends more tokens than this: a larger reported count is a server fault, not a bill.
MAX_TOKENS_PER_CALL = 10_000_000

# model: (input USD per 1M tokens, output USD per 1M tokens)
PRICES_PER_1M: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}

# The OpenAI Batch API's price as a share of the standard price (same tokens, 24 h window).
BATCH_DISCOUNT = 0.5

_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # gpt-4o-mini-2024-07-18 -> gpt-4o-mini
_unpriced: set[str] = set()
_unpriced_lock = threading.Lock()


def price_of(model: str) -> tuple[float, float] | None:
    """``(input, output)`` USD per 1M tokens for ``model``, or None when it is not in the table.

    A dated snapshot (``gpt-4o-mini-2024-07-18``) and a provider prefix (``openai/gpt-4o``) are
    priced as the base model.
    """
    name = model.strip().lower().rsplit("/", 1)[-1]
    return PRICES_PER_1M.get(name) or PRICES_PER_1M.get(_DATED.sub("", name))


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> float:
    """The USD cost of one call (``batch``: through the Batch API, at half price); 0 for an unpriced model."""
    price = price_of(model)
    if price is None:
        with _unpriced_lock:
            first = model not in _unpriced
            _unpriced.add(model)
        if first:
            logger.info("No price known for model %r: its calls are recorded at cost 0", model)
        return 0.0
    cost = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
    return cost * BATCH_DISCOUNT if batch else cost


def _token_count(usage: Any, name: str, model: str) -> int:
    """One token count of a reply's ``usage``; 0, with a warning, when it is not a sane whole number."""
    value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
    if value is None:
        return 0
    if value.__class__ is int and 0 <= value <= MAX_TOKENS_PER_CALL:
        return value
    logger.warning("Model %r reported %s = %.40r: not a token count, recorded as 0", model, name, value)
    return 0


def reply_usage(model: str, usage: Any, *, batch: bool = False) -> Usage:
    """Tokens and cost from a reply's untrusted ``usage`` (a dict or an object; None: nothing reported).

    The server writes these numbers: a count that is not a whole number in 0..:data:`MAX_TOKENS_PER_CALL`
    (``"abc"``, ``1e300``, ``-5``, ``true``) is recorded as 0 with a warning, so a grade already paid for is
    never lost to it.
    """
    if usage is None:
        return Usage()
    prompt = _token_count(usage, "prompt_tokens", model)
    completion = _token_count(usage, "completion_tokens", model)
    return Usage(prompt, completion, cost_usd(model, prompt, completion, batch=batch))
