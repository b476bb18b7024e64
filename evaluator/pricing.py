"""Judge token prices (USD per 1M tokens) and the cost of one call.

List prices of OpenAI's standard tier (mid-2025), uncached input; the Batch API bills half of them
(``batch=True``). Unknown models (self-hosted vLLM/TGI/Ollama models, new names) cost 0, with a note
logged once per model name.
"""

from __future__ import annotations

import logging
import re
import threading

logger = logging.getLogger(__name__)

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
