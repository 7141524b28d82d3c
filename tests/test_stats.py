"""Paired statistics used by the gate."""

from __future__ import annotations

import pytest

from molting.metrics.stats import mcnemar_regression, paired_bootstrap


def test_bootstrap_interval_excludes_zero_for_a_clear_gain():
    cand = [8.0, 9.0, 8.5, 9.5, 8.0, 9.0] * 10
    base = [c - 1.0 + (0.3 if i % 2 else -0.3) for i, c in enumerate(cand)]
    iv = paired_bootstrap(cand, base, seed=1)
    assert iv.low > 0.8 and iv.high < 1.2 and abs(iv.estimate - 1.0) < 1e-9


def test_bootstrap_interval_covers_zero_for_noise_and_is_deterministic():
    cand = [5.0, 6.0, 4.0, 5.5, 4.5, 6.5] * 10
    base = [6.0, 5.0, 5.5, 4.0, 6.5, 4.5] * 10
    a, b = paired_bootstrap(cand, base, seed=3), paired_bootstrap(cand, base, seed=3)
    assert a == b and a.low < 0 < a.high


def test_bootstrap_rejects_unpaired_or_empty_input():
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        paired_bootstrap([], [])


@pytest.mark.parametrize(
    "worse, better, significant", [(8, 0, True), (3, 3, False), (0, 10, False), (5, 1, False)]
)
def test_mcnemar_flags_only_significant_regressions(worse, better, significant):
    cand = [True] * worse + [False] * better + [False] * 50
    base = [False] * worse + [True] * better + [False] * 50
    m = mcnemar_regression(cand, base)
    assert (m.candidate_only, m.baseline_only) == (worse, better)
    assert (m.p_value < 0.05) is significant
