"""What an analysis cost: a per-model price table (US dollars per million tokens).

OpenAI's list prices for standard (non-batch, non-cached) requests, as published on
https://openai.com/api/pricing when this table was last updated; update it when they
change. A dated model name (``gpt-4.1-mini-2025-04-14``) is priced as its family (the
longest matching prefix). A model missing from the table costs 0 and is logged, so a new
model never stops analysis, and shows up in the logs for someone to price it.
"""

from __future__ import annotations

import logging
from decimal import Decimal

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)

# model family → (input, output) USD per 1M tokens
PRICES: dict[str, tuple[Decimal, Decimal]] = {
    "gpt-5": (Decimal("1.25"), Decimal("10.00")),
    "gpt-5-mini": (Decimal("0.25"), Decimal("2.00")),
    "gpt-5-nano": (Decimal("0.05"), Decimal("0.40")),
    "gpt-4.1": (Decimal("2.00"), Decimal("8.00")),
    "gpt-4.1-mini": (Decimal("0.40"), Decimal("1.60")),
    "gpt-4.1-nano": (Decimal("0.10"), Decimal("0.40")),
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
}


def price_of(model: str) -> tuple[Decimal, Decimal] | None:
    matches = [family for family in PRICES if model == family or model.startswith(family + "-")]
    return PRICES[max(matches, key=len)] if matches else None


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """The cost of one request, rounded to the micro-dollar the database stores."""
    price = price_of(model)
    if price is None:
        logger.warning("no price for model %r: its analyses are recorded at cost 0", model)
        return Decimal(0)
    cost = (price[0] * input_tokens + price[1] * output_tokens) / MILLION
    return cost.quantize(Decimal("0.000001"))
