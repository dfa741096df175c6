"""What an analysis cost, from the usage Claude reports and a price table.

Prices are US dollars per million tokens and change over time, so they are a setting
(`ANALYSIS_PRICES`, JSON) over these defaults; a model missing from the table costs by the
most expensive known tier rather than silently nothing.
"""

from __future__ import annotations

from pydantic import BaseModel


class Price(BaseModel):
    input: float
    output: float
    cache_write: float
    cache_read: float


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
        )


DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus": Price(input=15.0, output=75.0, cache_write=18.75, cache_read=1.5),
    "claude-sonnet": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3),
    "claude-haiku": Price(input=1.0, output=5.0, cache_write=1.25, cache_read=0.1),
}


def price_for(model: str, table: dict[str, Price]) -> Price:
    """The entry whose name is the longest prefix of the model id (`claude-sonnet-4-6`
    matches `claude-sonnet`); the dearest entry when none matches."""
    matches = [name for name in table if model.startswith(name)]
    if matches:
        return table[max(matches, key=len)]
    return max(table.values(), key=lambda price: price.output)


def cost_usd(usage: Usage, price: Price) -> float:
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_write_tokens * price.cache_write
        + usage.cache_read_tokens * price.cache_read
    ) / 1_000_000
