"""Moments as the store and the analysis compare them: timezone-aware, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive moment is taken to be UTC already (SQLite and the parsers'
    older rows give naive ones), never local time."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
