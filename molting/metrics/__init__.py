"""Metrics for the gate, fitted per persona bundle: personality (0–10), agent-phrase rate,
directness, PT-BR fluency — offline, anchored on the bundle's calibration split, proven on its
eval split and validation replies (METRICS_CALIBRATION.md, written by `molting calibrate`).

Load once, score many (fitting the style classifier takes seconds; embeddings are cached on disk):

    from molting.persona import load_persona
    from molting.metrics import Scorer, aggregate
    persona = load_persona("my-persona")
    scorer = Scorer.load(persona)               # the bundle's anchors; refuses stale ones
    scores = scorer.score(persona.eval_prompts(), replies)   # list[ReplyScores], same order
    s = scores[0]; s.personality, s.agent_like, s.direct, s.lang_match, s.fluency, s.gates
    summary = aggregate(scores)                 # {"all": Summary, "en": …, "pt": …}

API
- `Scorer.load(persona) -> Scorer`; `Scorer(persona)` fits without anchors (calibration)
- `Scorer.score(prompts: list[Prompt], replies: list[str]) -> list[ReplyScores]`; an empty reply
  scores 0 (gate "degenerate"); an empty list raises EvalError.
- `ReplyScores(id, lang, personality, agent_like, direct, language, lang_match, fluency,
  br_markers, gates, parts, version)`; fluency is None for English prompts.
- `aggregate(scores) -> dict[str, Summary]`, `wilson_interval(k, n) -> (low, high)`,
  `agent_rate(replies, langs)`, `directness(text)`.

Versioning: SCORER_VERSION plus the sha256 of every bundle file the scorer was fitted on (and
of the packaged persona-free sets) live in the bundle's anchors.json; loading refuses a mismatch.
"""

from __future__ import annotations

from molting.metrics.agent import agent_rate, directness, wilson_interval
from molting.metrics.aggregate import Summary, aggregate
from molting.metrics.scorer import SCORER_VERSION, Anchors, ReplyScores, Scorer

__all__ = [
    "SCORER_VERSION",
    "Anchors",
    "ReplyScores",
    "Scorer",
    "Summary",
    "agent_rate",
    "aggregate",
    "directness",
    "wilson_interval",
]
