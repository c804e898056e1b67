"""Percentiles and timing helpers shared by the measurements."""

import math
import statistics
import time


def now_ms():
    """Return a monotonic clock reading in milliseconds."""
    return time.perf_counter_ns() / 1e6


def percentile(samples, fraction):
    """Return the nearest-rank percentile: the smallest sample with `fraction` of all at or below it.

    Nearest rank is what examples/plumbing_bench.rs prints, so shell and Clampify figures
    use the same definition.
    """
    if not samples:
        raise ValueError("percentile of an empty sample list")
    ordered = sorted(samples)
    rank = math.ceil(fraction * len(ordered))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def median(samples):
    """Return the median (the mean of the two middle samples for an even count)."""
    return statistics.median(samples)
