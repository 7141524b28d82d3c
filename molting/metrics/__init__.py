"""Metrics for the gate: personality (0–10), agent-phrase rate, directness, PT-BR fluency —
offline, calibrated on the calibration split, proven on the eval split
(reports/METRICS_CALIBRATION.md, written by `molting calibrate`).

Load once, score many (fitting the style classifier and loading MiniLM take seconds; scoring
is batched):

    from molting.metrics import Scorer, aggregate
    scorer = Scorer.load()                      # frozen anchors; refuses stale fixtures
    s = scorer.score_reply({"id": "p1", "lang": "pt", "prompt": "…", "reference": "…"}, reply)
    s.personality, s.agent_like, s.direct, s.language, s.lang_match, s.fluency, s.gates
    scores = scorer.score(prompts, replies)     # list[ReplyScores], same order
    summary = aggregate(scores)                 # {"all": Summary, "en": …, "pt": …}
    summary["pt"].agent_rate.low, summary["pt"].personality.mean

API
- `Scorer.load(anchors_file=ANCHORS_FILE, fixtures=FIXTURES, language_detector="lingua") -> Scorer`
- `Scorer.score(prompts: list[dict], replies: list[str]) -> list[ReplyScores]`
- `Scorer.score_reply(prompt: dict, reply: str) -> ReplyScores`
  prompt: {"id", "lang": "en"|"pt", "prompt", "reference"} ("reference" optional: the prompt
  stands in for it). An empty reply scores 0 (gate "degenerate"); an empty prompt list raises
  EvalError.
- `ReplyScores(id, lang, personality, agent_like, direct, language, lang_match, fluency,
  br_markers, gates, parts, version)`; fluency is None for English prompts.
- `aggregate(scores) -> dict[str, Summary]`, `wilson_interval(k, n) -> (low, high)`,
  `agent_rate(replies, langs)`, `directness(text)`.
- `criteria_scorer(cfg)`: builds the scorer a criteria file asks for
  (`metrics: {backend: offline|judge, language_detector: lingua|langdetect, judge_model: …}`);
  the LLM judge (molting.metrics.judge) is never the default.

Versioning: SCORER_VERSION plus the sha256 of every fixture the scorer was fitted on live in the
anchors file; the scorer refuses to load when either differs.
"""

from __future__ import annotations

from molting.metrics.agent import agent_rate, directness, wilson_interval
from molting.metrics.aggregate import Summary, aggregate
from molting.metrics.scorer import ANCHORS_FILE, SCORER_VERSION, Anchors, ReplyScores, Scorer

BACKENDS = ("offline", "judge")


def criteria_scorer(cfg: dict | None = None):
    """The scorer named by a criteria file's `metrics:` block; offline unless it says `judge`."""
    from molting.errors import ConfigError

    cfg = dict(cfg or {})
    backend = cfg.pop("backend", "offline")
    if backend not in BACKENDS:
        raise ConfigError(f"metrics.backend: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "judge":
        from molting.metrics.judge import LLMJudge

        return LLMJudge.from_pretrained(cfg.pop("judge_model"), **cfg)
    unknown = sorted(set(cfg) - {"language_detector"})
    if unknown:
        raise ConfigError(f"metrics: unknown key(s) {', '.join(unknown)} (valid: backend, language_detector, judge_model)")
    return Scorer.load(**cfg)


__all__ = [
    "ANCHORS_FILE",
    "SCORER_VERSION",
    "Anchors",
    "ReplyScores",
    "Scorer",
    "Summary",
    "agent_rate",
    "aggregate",
    "criteria_scorer",
    "directness",
    "wilson_interval",
]
