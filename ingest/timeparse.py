"""Timestamps as senders really write them: ISO 8601 with `+0000`, nanoseconds, epoch seconds
or milliseconds, and the occasional value that is not a time at all."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_OFFSET_WITHOUT_COLON = re.compile(r"([+-]\d{2})(\d{2})$")
_FRACTION = re.compile(r"\.(\d+)")
_ZERO_TIME = "0001-01-01"
_EPOCH_MS_THRESHOLD = 10**11


def parse_time(value: object) -> datetime | None:
    """An aware UTC datetime, or None when the value holds no usable time."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip().replace(": ", ":")
    if not text or text.startswith(_ZERO_TIME):
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _from_epoch(float(text))
    text = text.replace(" ", "T", 1) if re.match(r"\d{4}-\d{2}-\d{2} \d", text) else text
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _OFFSET_WITHOUT_COLON.sub(r"\1:\2", text)
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None  # `9999-12-31T23:59:59-01:00` is a valid string but past year 9999 in UTC


def _from_epoch(number: float) -> datetime | None:
    if number != number or number < 0:
        return None
    seconds = number / 1000 if number >= _EPOCH_MS_THRESHOLD else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
