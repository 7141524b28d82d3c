"""Paired comparison statistics for the gate: same prompts, candidate vs baseline.

No eval harness ships a paired baseline-vs-candidate test (Inspect #2176; lm-eval compares
with an unpaired z-test), so here they are, small and deterministic:

    >>> paired_bootstrap([9, 8, 9, 7], [6, 7, 5, 7], seed=0).low > 0
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000  # the CI bounds move < 0.01 beyond this at n ≈ 60
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def paired_bootstrap(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap CI of mean(candidate − baseline) over paired prompts."""
    c, b = np.asarray(candidate, float), np.asarray(baseline, float)
    if c.shape != b.shape or c.size == 0:
        raise ValueError(
            f"paired samples must be non-empty and the same length ({c.size} vs {b.size})"
        )
    diff = c - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(resamples, diff.size))
    means = diff[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    return Interval(
        float(diff.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))
    )


@dataclass(frozen=True)
class McNemar:
    candidate_only: int  # prompts flagged for the candidate but not the baseline (regressions)
    baseline_only: int  # prompts flagged for the baseline but not the candidate (fixes)
    p_value: float  # one-sided exact: P(regressions ≥ observed | no difference)


def mcnemar_regression(candidate_flags: Sequence[bool], baseline_flags: Sequence[bool]) -> McNemar:
    """Exact one-sided McNemar (sign) test that the candidate is flagged MORE often than the
    baseline."""
    if len(candidate_flags) != len(baseline_flags):
        raise ValueError("paired flags must have the same length")
    worse = sum(c and not b for c, b in zip(candidate_flags, baseline_flags))
    better = sum(b and not c for c, b in zip(candidate_flags, baseline_flags))
    n = worse + better
    p = sum(math.comb(n, k) for k in range(worse, n + 1)) / 2**n if n else 1.0
    return McNemar(worse, better, p)
