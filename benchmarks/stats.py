"""Latency statistics: percentiles and the summary every scenario reports."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(latencies_s: Sequence[float], *, wall_s: float | None = None) -> dict[str, Any]:
    """count, p50/p95/p99/max in milliseconds and throughput in requests per second."""
    ms = [value * 1000.0 for value in latencies_s]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 3) if ms else None,
        "p95_ms": round(percentile(ms, 95), 3) if ms else None,
        "p99_ms": round(percentile(ms, 99), 3) if ms else None,
        "max_ms": round(max(ms), 3) if ms else None,
        "mean_ms": round(sum(ms) / len(ms), 3) if ms else None,
        "throughput_rps": (round(len(ms) / wall_s, 1) if wall_s and wall_s > 0 and ms else None),
    }


def ratio(value: float | None, floor: float | None) -> float | None:
    """value / floor, or None when either is missing or the floor is zero."""
    if value is None or floor is None or floor <= 0:
        return None
    return round(value / floor, 2)
