"""Summaries of many ReplyScores: means with 95% intervals, rates with Wilson intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass

from molting.errors import EvalError
from molting.metrics.agent import Rate, rate

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Mean:
    mean: float
    sd: float
    n: int
    low: float  # normal-approximation 95% interval of the mean
    high: float


def mean_ci(xs: list[float]) -> Mean:
    if not xs:
        raise EvalError("mean of nothing: an empty eval set never passes")
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    half = Z95 * sd / math.sqrt(n)
    return Mean(m, sd, n, m - half, m + half)


@dataclass(frozen=True)
class Summary:
    n: int
    personality: Mean
    agent_rate: Rate
    direct_rate: Rate
    lang_match_rate: Rate
    fluency: Mean | None  # Portuguese prompts only


def aggregate(scores: list) -> dict[str, Summary]:
    """Summary per prompt language and over all ("all"). Raises EvalError when `scores` is empty."""
    if not scores:
        raise EvalError("aggregate got no scores: an empty eval set never passes")
    groups = {"all": list(scores)}
    for s in scores:
        groups.setdefault(s.lang, []).append(s)
    out = {}
    for key, group in sorted(groups.items()):
        flu = [s.fluency for s in group if s.fluency is not None]
        out[key] = Summary(
            n=len(group),
            personality=mean_ci([s.personality for s in group]),
            agent_rate=rate([s.agent_like for s in group]),
            direct_rate=rate([s.direct for s in group]),
            lang_match_rate=rate([s.lang_match for s in group]),
            fluency=mean_ci(flu) if flu else None,
        )
    return out
