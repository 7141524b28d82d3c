"""Fit the anchors on the calibration split, then prove the metrics on the eval split.

`calibrate()` (CLI: `molting calibrate`) fits every anchor from calibration replies only,
writes them to the frozen anchors file, scores the eval split's reference and negative replies,
and writes reports/METRICS_CALIBRATION.md. The eval split is never used to fit anything.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from molting.metrics import negatives as N
from molting.metrics import personality as P
from molting.metrics.agent import flag_quality
from molting.metrics.fluency import Anchor, LanguageIdentifier
from molting.metrics.scorer import (
    ANCHORS_FILE,
    GENERIC_ANCHOR_SCORE,
    REFERENCE_QUANTILE,
    SCORER_VERSION,
    Anchors,
    Scorer,
)
from molting.metrics.splits import (
    FIXTURES,
    NEGATIVES,
    calibration_split,
    eval_split,
    fingerprints,
    read_jsonl,
)

REPORT = Path("reports/METRICS_CALIBRATION.md")
ON_TOPIC_QUANTILE = 0.10  # on-topic replies at or above this z-quantile get full topical credit
FLUENT_QUANTILE = 0.10  # reference PT at or above this quantile of each part gets full credit
PERSONALITY_SETS = ("reference", "generic", "agent_like", "stuffed", "off_topic")
FLUENCY_SETS = ("reference", "european_pt", "loop", "shuffled", "garbled", "echo", "english_for_pt")


def reply_set(records: list[dict], kind: str, pool: list[dict] | None = None) -> list[str]:
    """The replies of one kind for each record (hand-written fields or built negatives);
    `pool` is the whole split when `records` is a language subset (English replies come from it)."""
    if kind in ("reference", "generic", "agent_like", "european_pt"):
        return [r[kind] for r in records]
    if kind == "off_topic":
        return [N.off_topic(records, i) for i in range(len(records))]
    if kind == "english_for_pt":
        return [N.english_for_pt(records, i, pool) for i in range(len(records))]
    return [getattr(N, kind)(r) for r in records]


def _raw(scorer: Scorer, records: list[dict], kind: str) -> list[dict]:
    return scorer.raw(records, reply_set(records, kind))


def fit_anchors(scorer: Scorer, cal: list[dict]) -> Anchors:
    """Every anchor from the calibration split; see the docstrings of personality and fluency."""
    raws = {k: _raw(scorer, cal, k) for k in ("reference", "generic", "agent_like", "off_topic")}
    base = {k: [P.base_score(r["style"], r["direct"], r["signatures"]) for r in v] for k, v in raws.items()}
    on_topic_z = [r["topical_z"] for k in ("generic", "agent_like") for r in raws[k]]
    pt = [r for r in cal if r["lang"] == "pt"]
    flu = {k: [r["fluency"] for r in _raw(scorer, pt, k)] for k in ("reference", "garbled", "echo", "shuffled")}
    q = lambda xs, p: float(np.quantile(xs, p))
    ref = flu["reference"]
    return Anchors(
        version=SCORER_VERSION,
        fixtures=fingerprints(),
        base_generic=q(base["generic"], 0.5),
        base_reference=q(base["reference"], REFERENCE_QUANTILE),
        topical=Anchor(q([r["topical_z"] for r in raws["off_topic"]], 0.5), q(on_topic_z, ON_TOPIC_QUANTILE)),
        lexical=Anchor(q([f.known_rate for f in flu["garbled"]], 0.5), q([f.known_rate for f in ref], FLUENT_QUANTILE)),
        # the mildest built degeneration (the last sentence said three more times) marks 0
        repetition=Anchor(q([f.repetition for f in flu["echo"]], 0.5), q([f.repetition for f in ref], FLUENT_QUANTILE)),
        syntax=Anchor(q([f.slor for f in flu["shuffled"]], 0.5), q([f.slor for f in ref], FLUENT_QUANTILE)),
    )


def auc(pos: list[float], neg: list[float]) -> float:
    """Mann–Whitney AUC: P(random positive > random negative), ties count half."""
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


@dataclass
class CalibrationResult:
    anchors: Anchors
    personality: dict[str, float]  # eval-split means per reply set
    personality_by_lang: dict[str, dict[str, float]]
    style_auc: float  # classifier probability, references vs generic + agent-like (eval)
    score_auc: float  # final personality score, same sets
    agent_flags: dict[str, float]
    langid: dict[str, float]  # accuracy on the labelled short EN/PT texts
    fluency: dict[str, float]  # eval-split PT means per reply set
    fluency_parts: dict[str, dict[str, float]]
    timings: dict[str, float] = field(default_factory=dict)
    train_sizes: dict[str, int] = field(default_factory=dict)


def _mean(xs) -> float:
    return float(np.mean(xs))


def evaluate(scorer: Scorer, records: list[dict]) -> dict:
    """Personality and fluency means of every reply set on `records` (the eval split)."""
    pers, by_lang, style = {}, {}, {}
    for kind in PERSONALITY_SETS:
        scores = scorer.score(records, reply_set(records, kind))
        pers[kind] = _mean([s.personality for s in scores])
        by_lang[kind] = {lg: _mean([s.personality for s in scores if s.lang == lg]) for lg in ("en", "pt")}
        style[kind] = [s.parts["style"] for s in scores] + [s.personality for s in scores]
    n = len(records)
    style_auc = auc(style["reference"][:n], style["generic"][:n] + style["agent_like"][:n])
    score_auc = auc(style["reference"][n:], style["generic"][n:] + style["agent_like"][n:])
    pt = [r for r in records if r["lang"] == "pt"]
    flu, parts = {}, {}
    for kind in FLUENCY_SETS:
        scores = scorer.score(pt, reply_set(pt, kind, pool=records))
        flu[kind] = _mean([s.fluency for s in scores])
        keys = ("in_language", "lexical", "repetition", "syntax", "variety")
        parts[kind] = {k: _mean([(s.parts["fluency"] or {}).get(k, 0.0) for s in scores]) for k in keys}
    salad = read_jsonl(NEGATIVES / "salad_pt.jsonl")
    scores = scorer.score([{**r, "reference": r["prompt"]} for r in salad], [r["reply"] for r in salad])
    flu["salad_handwritten"] = _mean([s.fluency for s in scores])
    n_scored = len(PERSONALITY_SETS) * n + len(FLUENCY_SETS) * len(pt) + len(salad)
    return dict(personality=pers, personality_by_lang=by_lang, style_auc=style_auc, score_auc=score_auc,
                fluency=flu, fluency_parts=parts, n_scored=n_scored)


def agent_flag_quality() -> dict[str, float]:
    rows = read_jsonl(NEGATIVES / "agent_phrases_labelled.jsonl")
    fq = flag_quality([r["text"] for r in rows], [bool(r["agent_like"]) for r in rows])
    return dict(precision=fq.precision, recall=fq.recall, tp=fq.tp, fp=fq.fp, fn=fq.fn, tn=fq.tn, n=len(rows))


def langid_accuracy() -> dict[str, float]:
    rows = read_jsonl(NEGATIVES / "langid_short.jsonl")
    out = {"n": len(rows)}
    for name, lid in (("lingua", LanguageIdentifier("lingua")), ("langdetect", LanguageIdentifier("langdetect")),
                      ("langdetect_unrestricted", LanguageIdentifier("langdetect", candidates=_ALL_LANGDETECT))):
        out[name] = _mean([lid.detect(r["text"]) == r["lang"] for r in rows])
    return out


_ALL_LANGDETECT = tuple(["af", "ar", "bg", "bn", "ca", "cs", "cy", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "gu", "he", "hi", "hr", "hu", "id", "it", "ja", "kn", "ko", "lt", "lv", "mk", "ml", "mr", "ne", "nl", "no", "pa", "pl", "pt", "ro", "ru", "sk", "sl", "so", "sq", "sv", "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi"])


def calibrate(report: Path | None = REPORT, anchors_file: Path | None = ANCHORS_FILE,
              scorer: Scorer | None = None) -> CalibrationResult:
    t0 = time.perf_counter()
    scorer = scorer or Scorer(anchors=None)
    t_load = time.perf_counter() - t0
    anchors = fit_anchors(scorer, calibration_split())
    scorer.anchors = anchors
    if anchors_file is not None:
        Path(anchors_file).write_text(json.dumps(anchors.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    t1 = time.perf_counter()
    ev = evaluate(scorer, eval_split())
    t_eval = time.perf_counter() - t1
    n_scored = ev.pop("n_scored")
    train = scorer.train
    result = CalibrationResult(
        anchors=anchors, agent_flags=agent_flag_quality(), langid=langid_accuracy(),
        timings=dict(load_s=t_load, eval_s=t_eval, n_scored=n_scored),
        train_sizes=dict(persona=len(train.of("persona")), agent=len(train.of("agent")),
                         generic=len(train.of("generic")), dropped_contaminated=train.dropped_contaminated),
        **ev,
    )
    if report is not None:
        from molting.metrics.report import write_report

        write_report(result, Path(report))
    return result


__all__ = [
    "FIXTURES",
    "GENERIC_ANCHOR_SCORE",
    "CalibrationResult",
    "auc",
    "calibrate",
    "evaluate",
    "fit_anchors",
]
