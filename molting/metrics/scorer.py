"""The Scorer: fitted once (style classifier, MiniLM, language ID, lexicon, class-bigram LM),
then scores replies in batches. Anchors come from the frozen anchors file written by
`molting calibrate`; loading refuses anchors fitted on different fixtures or another version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from molting.errors import EvalError, ModelError
from molting.metrics import personality as P
from molting.metrics.text import require_text, words
from molting.metrics.agent import directness
from molting.metrics.fluency import (
    Anchor,
    ClassBigramLM,
    Fluency,
    LanguageIdentifier,
    Lexicon,
    combine_fluency,
    fluency_raw,
    repetition,
    variety_markers,
)
from molting.metrics.splits import FIXTURES, fingerprints, persona_signatures, train_split
from molting.curate.patterns import normalize

SCORER_VERSION = "2026.12.1"  # bump when a feature, weight or anchor rule changes; recalibrate
ANCHORS_FILE = Path(__file__).with_name("anchors.json")
LANG_MATCH_MIN = 0.5  # at least half the prose (by words) in the prompt's language
GENERIC_ANCHOR_SCORE = 2.0  # the calibration generic median maps here …
REFERENCE_QUANTILE = 0.25  # … and this quantile of calibration references maps to 10


@dataclass(frozen=True)
class Anchors:
    version: str
    fixtures: dict[str, str]
    base_generic: float  # calibration generic median of the base score
    base_reference: float  # calibration reference REFERENCE_QUANTILE of the base score
    topical: Anchor  # z-score: off-topic median ↦ 0, on-topic 10th percentile ↦ 1
    lexical: Anchor
    repetition: Anchor
    syntax: Anchor

    def personality(self, base: float) -> float:
        slope = (10 - GENERIC_ANCHOR_SCORE) / (self.base_reference - self.base_generic)
        return float(min(10.0, max(0.0, GENERIC_ANCHOR_SCORE + slope * (base - self.base_generic))))

    def fluency_anchors(self) -> dict[str, Anchor]:
        return {"lexical": self.lexical, "repetition": self.repetition, "syntax": self.syntax}

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Anchors:
        d = dict(d)
        for k in ("topical", "lexical", "repetition", "syntax"):
            d[k] = Anchor(**d[k])
        return cls(**d)


@dataclass(frozen=True)
class ReplyScores:
    id: str
    lang: str  # the prompt's language
    personality: float  # 0–10
    agent_like: bool  # curation's flag
    direct: bool
    language: str  # detected language of the reply
    lang_match: bool
    fluency: float | None  # 0–10, Portuguese prompts only
    br_markers: tuple[str, ...]  # "br:voce", "eu:tu_forms", …
    gates: tuple[str, ...]  # why the personality score was cut: off_topic, wrong_language, …
    parts: dict = field(repr=False, compare=False, default_factory=dict)
    version: str = SCORER_VERSION


class Scorer:
    """Load once, score many: `Scorer.load().score(prompts, replies)`."""

    def __init__(self, anchors: Anchors | None, fixtures: Path = FIXTURES, language_detector: str = "lingua"):
        split = train_split(fixtures)
        self.train = split
        self.signatures = P.signature_regex(persona_signatures(fixtures))
        self.style = P.StyleClassifier(self.signatures).fit(split.texts, split.labels)
        self.lang_id = LanguageIdentifier(language_detector)
        self.lexicon = Lexicon()
        self.lm = ClassBigramLM([t for t, lg in zip(split.texts, split.langs) if lg == "pt"])
        self.encoder = P.Encoder()
        self.topicality = P.Topicality(self.encoder, {lg: split.of("persona", lg) for lg in ("en", "pt")})
        self.anchors = anchors

    @classmethod
    def load(cls, anchors_file: Path = ANCHORS_FILE, fixtures: Path = FIXTURES, **kw) -> Scorer:
        """The scorer with frozen anchors; refuses anchors from another version or other fixtures."""
        if not Path(anchors_file).exists():
            raise ModelError(f"{anchors_file}: no frozen anchors. Run: molting calibrate")
        anchors = Anchors.from_json(json.loads(Path(anchors_file).read_text(encoding="utf-8")))
        if anchors.version != SCORER_VERSION:
            raise ModelError(f"{anchors_file}: anchors are for scorer {anchors.version}, code is "
                             f"{SCORER_VERSION}. Run: molting calibrate")
        now = fingerprints(fixtures)
        changed = sorted(k for k in now if anchors.fixtures.get(k) != now[k])
        if changed:
            raise ModelError(f"{anchors_file}: fitted on other fixtures ({', '.join(changed)} changed). "
                             f"Run: molting calibrate, and bump SCORER_VERSION")
        return cls(anchors, fixtures, **kw)

    # ------------------------------------------------------------ scoring

    def raw(self, prompts: list[dict], replies: list[str]) -> list[dict]:
        """Anchor-free measurements per reply (what calibration fits anchors on)."""
        if len(prompts) != len(replies):
            raise ValueError(f"{len(prompts)} prompts but {len(replies)} replies")
        if not replies:
            raise EvalError("nothing to score: an empty eval set never passes")
        for p in prompts:
            if not str(p.get("prompt", "")).strip() or p.get("lang") not in ("en", "pt"):
                raise EvalError(f"prompt {p.get('id', '?')!r} needs a non-empty 'prompt' and lang 'en' or 'pt'")
        replies = [require_text(r) for r in replies]
        style = self.style.proba(replies)
        langs = [p["lang"] for p in prompts]
        z = self.topicality.z(replies, [p["prompt"] for p in prompts],
                              [p.get("reference") or p["prompt"] for p in prompts], langs)
        out = []
        for p, text, s, zi in zip(prompts, replies, style, z):
            d = directness(text)
            share = self.lang_id.share(text, p["lang"]) if text.strip() else 0.0
            sig = len(self.signatures.findall(normalize(text)))
            out.append(dict(
                style=float(s), direct=d.direct, agent_like=d.agent_like, agent_hits=d.agent_hits,
                preamble=d.preamble, signatures=sig, topical_z=float(zi), in_language=share,
                words=len(words(text)), repetition=repetition(text, self.lm.vocab).value,
                fluency=(fluency_raw(text, self.lang_id, self.lexicon, self.lm, prompt=p["prompt"], in_language=share)
                         if p["lang"] == "pt" and text.strip() else None),
            ))
        return out

    def score(self, prompts: list[dict], replies: list[str]) -> list[ReplyScores]:
        if self.anchors is None:
            raise ModelError("this scorer has no anchors yet; use Scorer.load() or molting calibrate")
        a = self.anchors
        results = []
        for p, text, r in zip(prompts, replies, self.raw(prompts, replies)):
            base = P.base_score(r["style"], r["direct"], r["signatures"])
            anchored = a.personality(base)
            topical = a.topical(r["topical_z"])
            lang_ok = r["in_language"] >= LANG_MATCH_MIN
            degenerate = r["words"] < P.DEGENERATE_MIN_WORDS or r["repetition"] < P.DEGENERATE_REPETITION
            stuffed = r["signatures"] >= P.STUFFED_AT
            gates = tuple(g for g, on in (("off_topic", topical < 0.5), ("wrong_language", not lang_ok),
                                          ("degenerate", degenerate), ("stuffed", stuffed)) if on)
            flu: Fluency | None = combine_fluency(r["fluency"], a.fluency_anchors()) if r["fluency"] else None
            results.append(ReplyScores(
                id=str(p.get("id", "")), lang=p["lang"],
                personality=round(P.gate(anchored, topical, lang_ok, degenerate, stuffed), 4),
                agent_like=r["agent_like"], direct=r["direct"],
                language=self.lang_id.detect(text) if text.strip() else "unknown", lang_match=lang_ok,
                fluency=(flu.score if flu else (0.0 if p["lang"] == "pt" else None)),
                br_markers=variety_markers(text).found if p["lang"] == "pt" else (),
                gates=gates,
                parts=dict(style=r["style"], base=base, anchored=anchored, topical=topical,
                           topical_z=r["topical_z"], signatures=r["signatures"], agent_hits=r["agent_hits"],
                           preamble=r["preamble"], in_language=r["in_language"],
                           fluency=None if not flu else dict(in_language=flu.in_language, lexical=flu.lexical,
                                                             repetition=flu.repetition, syntax=flu.syntax,
                                                             variety=flu.variety, unknown=flu.raw.unknown)),
            ))
        return results

    def score_reply(self, prompt: dict, reply: str) -> ReplyScores:
        return self.score([prompt], [reply])[0]


def personality_scores(scores: list[ReplyScores]) -> np.ndarray:
    return np.array([s.personality for s in scores])
