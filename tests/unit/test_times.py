"""Moments as both stores write them: a naive moment is UTC, never the host's local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from incidents.times import as_utc, utc_text


def test_a_naive_moment_is_utc_whatever_the_host_zone() -> None:
    aware = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert as_utc(aware.replace(tzinfo=None)) == aware
    assert utc_text(aware.replace(tzinfo=None)) == utc_text(aware) == "2026-11-24T08:00:00.000000Z"


def test_utc_text_is_fixed_width_so_string_order_is_time_order() -> None:
    paris = timezone(timedelta(hours=1))
    earlier = datetime(2026, 11, 24, 9, 0, 0, tzinfo=paris)  # 08:00 UTC
    later = datetime(2026, 11, 24, 8, 0, 0, 1, tzinfo=UTC)
    assert utc_text(earlier) < utc_text(later)
