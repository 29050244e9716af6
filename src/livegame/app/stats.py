"""Latency summaries for the benchmarks."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the value below which ``fraction`` of the sorted sample lies."""
    if not sorted_values:
        return float("nan")
    index = min(
        len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1)
    )
    return sorted_values[index]


def summary_ms(samples: Sequence[float]) -> str:
    """Format p50/p95/p99 of samples given in seconds, in milliseconds."""
    ordered = sorted(samples)
    p50, p95, p99 = (percentile(ordered, f) * 1000 for f in (0.50, 0.95, 0.99))
    return f"p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms  (n={len(ordered)})"
