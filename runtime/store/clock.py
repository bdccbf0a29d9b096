"""Conversions between the clock seam's epoch milliseconds and stored datetimes.

The clock itself is `runtime.clock.Clock`, shared with the runtime so one fake moves both."""

from __future__ import annotations

from datetime import UTC, datetime


def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
