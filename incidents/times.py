"""Moments as the store and the analysis compare them: timezone-aware, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive moment is taken to be UTC already (SQLite and the parsers'
    older rows give naive ones), never local time."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_text(moment: datetime) -> str:
    """Fixed-width UTC text, so that string order is time order in SQLite columns and DynamoDB
    keys and conditions (`isoformat()` drops zero microseconds and keeps the offset, which
    breaks that); both stores write it, so they read a naive moment the same way."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
