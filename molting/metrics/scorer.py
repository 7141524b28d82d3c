"""The Scorer: fitted once per persona bundle (style classifier, language ID, lexicon, class-bigram
LM, topicality pool), then scores replies in batches. Anchors come from the bundle's
anchors.json, written by `molting calibrate --persona DIR`; loading refuses anchors fitted on
other bundle files, other packaged sets or another scorer version.
"""

from __future__ import annotations

import math
import re
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import cached_property
from typing import Any

import numpy as np

from molting.errors import EvalError, ModelError
from molting.io import read_json
from molting.metrics import personality as P
from molting.metrics import state
from molting.metrics.agent import directness
from molting.metrics.embeddings import Encoder, Retriever
from molting.metrics.fitdata import TrainSplit, packaged, packaged_fingerprint, train_split
from molting.metrics.fluency import (
    Anchor,
    ClassBigramLM,
    Fluency,
    FluencyRaw,
    Lexicon,
    VarietyMarkers,
    combine_fluency,
    fluency_raw,
    repetition,
    variety_markers,
)
from molting.metrics.impostors import foreign_signatures
from molting.metrics.language import LanguageIdentifier
from molting.metrics.text import STOPWORDS, words
from molting.metrics.topicality import (
    PARAPHRASE,
    Competitor,
    TopicalAnchor,
    Topicality,
    answers_prompt,
    open_question,
    stems,
)
from molting.persona import Persona, Prompt
from molting.text.patterns import normalize

SCORER_VERSION = "2026.12.7.14"  # bump when a feature, weight or anchor rule changes; recalibrate
# Gates that fail a reply whatever its topic: zeroed (degenerate, wrong language) or cut to a
# tenth (agent talk: at most 1 of 10). The retrieval model, 0.1 s a reply on a small CPU, is not
# asked about them (16 of the 178 replies it would read in Cláudio's validation sets).
FAILED_BY = frozenset({"degenerate", "wrong_language", "agent_talk"})
LANG_MATCH_MIN = 0.5  # at least half the prose (by words) in the prompt's language
GENERIC_ANCHOR_SCORE = 2.0  # the calibration generic median maps here …
# … and this quantile of calibration references maps to ANCHORED_MAX: the persona's own replies
# reach full voice credit nine times in ten, as the in-voice pass targets (≥ 90%) ask of new ones
REFERENCE_QUANTILE = 0.10
# … and this quantile of other voices' replies (each scored by a style model that never saw its
# voice) maps to IMPOSTOR_ANCHOR_SCORE: nine in ten voices the scorer never saw stay under the
# pass line, as the discriminant targets (≤ 10% of other voices pass) ask. 8.0 rather than 7.5
# or 7.0: on the development sets (tests/data/metric_dev, other voices on the calibration
# prompts) 7.5 kept Helena's other voices at 17% / 0% (EN / PT) but her new-author PT replies at
# 62%; 8.0 gives 22% / 8% and 75%.
IMPOSTOR_QUANTILE = 0.90
IMPOSTOR_ANCHOR_SCORE = 8.0


@dataclass(frozen=True)
class Anchors:
    version: str
    fingerprints: dict[str, str]
    base_generic: dict[str, float]  # per language: calibration generic median of the base score
    base_reference: dict[
        str, float
    ]  # per language: calibration reference REFERENCE_QUANTILE of the base score
    base_impostor: dict[str, float]  # per language: IMPOSTOR_QUANTILE of unseen voices' base scores
    topical: dict[str, TopicalAnchor]  # per language: similarity to the reference ↦ topical gate
    degenerate: P.DegenerateRule
    lexical: Anchor | None = None  # fluency anchors: None for a persona without Portuguese
    repetition: Anchor | None = None
    syntax: Anchor | None = None
    # per language: the share of voices the scorer never saw (cross-fitted) whose voice score, the
    # anchored base before topicality and the gates, reaches `voice_threshold` (calibration's
    # pass line): what a report says of a voice the metric does not tell apart
    unseen_voice_pass: dict[str, float] = field(default_factory=dict)
    voice_threshold: float | None = None

    def anchored(self, base: float, lang: str) -> float:
        """Piecewise linear through (generic median, 2), (unseen voices' q90, 8.0) and (reference
        q10, 9.6), clipped to [0, 9.6]; linear from generic to reference when the other voices
        do not sit between them (the validity report and `persona init` say so)."""
        points = [
            (self.base_generic[lang], GENERIC_ANCHOR_SCORE),
            (self.base_reference[lang], P.ANCHORED_MAX),
        ]
        if self.separates(lang):
            points.insert(1, (self.base_impostor[lang], IMPOSTOR_ANCHOR_SCORE))
        xs, ys = zip(*points)
        slope_low = (ys[1] - ys[0]) / max(xs[1] - xs[0], 1e-6)
        if base <= xs[0]:
            y = ys[0] + slope_low * (base - xs[0])
        else:
            y = float(np.interp(base, xs, ys))
        return float(min(P.ANCHORED_MAX, max(0.0, y)))

    def separates(self, lang: str) -> bool:
        """Unseen voices sit strictly between the generic median and the references' q10."""
        return self.base_generic[lang] < self.base_impostor[lang] < self.base_reference[lang]

    def fluency_anchors(self) -> dict[str, Anchor]:
        return {"lexical": self.lexical, "repetition": self.repetition, "syntax": self.syntax}

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Anchors:
        d = dict(d)
        d["topical"] = {lang: TopicalAnchor(**t) for lang, t in d["topical"].items()}
        d["degenerate"] = P.DegenerateRule(**d["degenerate"])
        for k in ("lexical", "repetition", "syntax"):
            d[k] = Anchor(**d[k]) if d.get(k) else None
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


def bundle_fingerprints(persona: Persona) -> dict[str, str]:
    return persona.fingerprints() | {"packaged_sets": packaged_fingerprint()}


class Scorer:
    """Fit once, score many: `Scorer.load(persona).score(prompts, replies)`."""

    def __init__(
        self,
        persona: Persona,
        anchors: Anchors | None = None,
        language_detector: str = "lingua",
        encoder: Encoder | None = None,
        use_stored: bool = False,
    ):
        self.persona = persona
        self.lang_id = LanguageIdentifier(language_detector)
        self.signatures = P.signature_regex(persona.card.all_signatures())
        self.lexicon = Lexicon()
        self._encoder = encoder
        self._train = None
        self.anchors = anchors
        self.fitted = "not yet"
        self._key = state.state_key(bundle_fingerprints(persona), SCORER_VERSION)
        self._use_stored = use_stored
        self.measured = state.RawCache(self._key) if use_stored else None
        self._models: tuple | None = (
            None  # (style, topicality, lm, foreign): loaded or fitted on first use
        )
        if not use_stored:
            self._fit()

    def _fit(self) -> tuple:
        """The fitted parts: loaded from the store when it holds this bundle's fit, else fitted
        (and stored). A re-run whose replies were all measured before needs none of them."""
        if self._models is None:
            stored = state.load(self._key) if self._use_stored else None
            if stored is not None:
                self._models = state.restore(*stored, self.signatures)
                self.fitted = "loaded"
            else:
                split = self.train
                style = P.StyleClassifier(self.signatures).fit(split.texts, split.labels)
                pt_text = [t for t, lg in zip(split.texts, split.langs) if lg == "pt"]
                lm = ClassBigramLM(pt_text) if "pt" in self.persona.languages and pt_text else None
                cal = self.persona.calibration_prompts()
                bundle = self.persona.eval_prompts() + cal
                competitors = [
                    Competitor(p.lang, p.prompt, p.reference) for p in bundle if p.reference
                ] + [Competitor(x.lang, x.prompt, x.reply) for x in split.pairs]
                topicality = Topicality(
                    split.texts
                    + [x.prompt for x in split.pairs]
                    + [p.prompt for p in cal]
                    + [p.reference for p in cal],
                    competitors,
                )
                foreign = P.foreign_phrases(
                    foreign_signatures(self.persona) + P.never_phrases(self.persona.card.never),
                    split.of("persona"),
                    [r["reply"] for r in packaged("generic")],
                )
                self._models = (style, topicality, lm, foreign)
                self.fitted = "fitted"
                state.save(self._key, style, topicality, lm, foreign)
        return self._models

    @property
    def style(self) -> P.StyleClassifier:
        return self._fit()[0]

    @property
    def topicality(self) -> Topicality:
        return self._fit()[1]

    @property
    def lm(self) -> ClassBigramLM | None:
        return self._fit()[2]

    @cached_property
    def foreign(self) -> re.Pattern[str] | None:
        """Other voices' catchphrases and the card's never-list phrases the persona never uses."""
        return P.signature_regex(self._fit()[3])

    @property
    def train(self) -> TrainSplit:
        """What the scorer is fitted on (computed on first use: a stored scorer does not need
        it)."""
        if self._train is None:
            self._train = train_split(self.persona, self.lang_id)
        return self._train

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder()
        return self._encoder

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever()

    @classmethod
    def load(cls, persona: Persona, **kw) -> Scorer:
        """The scorer with the bundle's anchors (refusing anchors that no longer fit the bundle),
        loaded from the stored fit when one matches the bundle, else fitted and stored."""
        return cls(persona, load_anchors(persona), use_stored=True, **kw)

    # ------------------------------------------------------------ scoring

    def _check(self, prompts: list[Prompt], replies: list[str]) -> None:
        if len(prompts) != len(replies):
            raise ValueError(f"{len(prompts)} prompts but {len(replies)} replies")
        if not replies:
            raise EvalError("nothing to score: an empty eval set never passes")
        for r in replies:
            if not isinstance(r, str):
                raise TypeError(f"replies must be str, got {type(r).__name__}")
        for p in prompts:
            if p.lang not in self.persona.languages:
                raise EvalError(
                    f"prompt {p.id!r} is in '{p.lang}', not one of the persona's languages "
                    f"({', '.join(self.persona.languages)})"
                )

    def raw(self, prompts: list[Prompt], replies: list[str]) -> list[dict]:
        """Anchor-free measurements per reply (what calibration fits anchors on)."""
        self._check(prompts, replies)
        style = self.style.proba(replies)
        topical = self.topicality.score(replies, [p.reference for p in prompts])
        margins = self.topicality.margins(
            replies,
            [p.reference for p in prompts],
            [p.prompt for p in prompts],
            [p.lang for p in prompts],
            self._prompt_similarity,
        )
        out, foreign = [], self.foreign
        for p, text, s, t, m in zip(prompts, replies, style, topical, margins):
            d = directness(text)
            share = (
                self.lang_id.share(text, p.lang, self.persona.languages) if text.strip() else 0.0
            )
            stop = (
                self.lm.vocab
                if (p.lang == "pt" and self.lm)
                else frozenset(normalize(w) for w in STOPWORDS)
            )
            out.append(
                dict(
                    style=float(s),
                    direct=d.direct,
                    agent_like=d.agent_like,
                    agent_hits=d.agent_hits,
                    preamble=d.preamble,
                    signatures=P.count_signatures(self.signatures, text),
                    topical=float(t),
                    topical_margin=m,
                    foreign=P.count_signatures(foreign, text),
                    language=self.lang_id.detect(text) if text.strip() else "unknown",
                    in_language=share,
                    words=len(words(text)),
                    repetition=repetition(text, stop).value,
                    variety=variety_markers(text) if p.lang == "pt" else None,
                    fluency=(
                        fluency_raw(
                            text,
                            self.lang_id,
                            self.lexicon,
                            self.lm,
                            prompt=p.prompt,
                            in_language=share,
                        )
                        if p.lang == "pt" and self.lm and text.strip()
                        else None
                    ),
                )
            )
        return out

    def _prompt_similarity(self, prompts: list[str], others: list[str]) -> np.ndarray:
        """MiniLM cosine of every prompt with every other question (embeddings cached on disk)."""
        return self.encoder.encode(prompts) @ self.encoder.encode(others).T

    def answers(self, prompts: list[Prompt], replies: list[str]) -> list[bool]:
        """Per reply, does the retrieval model find it answering its prompt (`answers_prompt`)
        against the persona's reference and the questions of the topicality competitors in its
        language (paraphrases of the prompt, the prompt itself among them, left out)?"""
        out = [False] * len(replies)
        for lang in sorted({p.lang for p in prompts}):
            idx = [i for i, p in enumerate(prompts) if p.lang == lang]
            others = sorted({c.prompt for c in self.topicality.competitors if c.lang == lang})
            mine = [prompts[i].prompt for i in idx]
            q = self.retriever.questions(mine)
            given = self.retriever.answers([replies[i] for i in idx])
            own = np.einsum("ij,ij->i", given, q)
            reference = np.einsum(
                "ij,ij->i", self.retriever.answers([prompts[i].reference or "" for i in idx]), q
            )
            rest = given @ self.retriever.questions(others).T
            keep = self._prompt_similarity(mine, others) < PARAPHRASE
            for row, i in enumerate(idx):
                out[i] = answers_prompt(
                    float(own[row]), float(reference[row]), rest[row][keep[row]]
                )
        return out

    def raw_cached(self, prompts: list[Prompt], replies: list[str]) -> list[dict]:
        """raw(), reusing stored measurements of the same reply to the same prompt."""
        if self.measured is None:
            return self.raw(prompts, replies)
        self._check(prompts, replies)
        keys = [
            self.measured.item_key(p.lang, p.prompt, p.reference, r)
            for p, r in zip(prompts, replies)
        ]
        found = {k: _raw_from_json(v) for k, v in self.measured.get_many(keys).items()}
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo:
            fresh = self.raw([prompts[i] for i in todo], [replies[i] for i in todo])
            found.update({keys[i]: r for i, r in zip(todo, fresh)})
            self.measured.put_many({keys[i]: _raw_to_json(r) for i, r in zip(todo, fresh)})
        return [found[k] for k in keys]

    def score(self, prompts: list[Prompt], replies: list[str]) -> list[ReplyScores]:
        if self.anchors is None:
            raise ModelError(
                "this scorer has no anchors yet; run `molting calibrate --persona DIR` first"
            )
        a = self.anchors
        raws = self.raw_cached(prompts, replies)
        topical = [
            a.topical[p.lang].gate(r["topical"], r["topical_margin"], len(stems(p.reference)))
            for p, r in zip(prompts, raws)
        ]
        out = [self.from_raw(p, x, r, t) for p, x, r, t in zip(prompts, replies, raws, topical)]
        # the retrieval model reads only replies to open questions that the lexical measures cut
        # (topicality's docstring), and not one another gate has already failed
        cut = [
            i
            for i, (p, t) in enumerate(zip(prompts, topical))
            if t < 1.0
            and not FAILED_BY & set(out[i].gates)
            and open_question(p.prompt, p.reference)
        ]
        if cut:
            found = self.answers([prompts[i] for i in cut], [replies[i] for i in cut])
            for i, ok in zip(cut, found):
                t = 1.0 if ok else topical[i]
                out[i] = self.from_raw(prompts[i], replies[i], raws[i], t, answered=ok)
        return out

    def from_raw(
        self, p: Prompt, text: str, r: dict, topical: float, answered: bool | None = None
    ) -> ReplyScores:
        """One reply's scores from its raw measurements and its topical factor (`score` gates
        topicality against the reference; a caller without a reference passes 1).
        `answered`: the retrieval model's verdict (`answers_prompt`), where it was asked (None:
        it was not)."""
        a = self.anchors
        base = P.base_score(r["style"], r["direct"])
        anchored = a.anchored(base, p.lang)
        lang_ok = r["in_language"] >= LANG_MATCH_MIN
        kind = (
            P.degenerate_kind(text, p.prompt, a.degenerate, r["repetition"])
            if text.strip()
            else "empty"
        )
        variety = r["variety"].factor if r["variety"] is not None else 1.0
        gates = tuple(
            g
            for g, on in (
                ("off_topic", topical < 0.5),
                ("wrong_language", not lang_ok),
                ("degenerate", kind is not None),
                ("agent_talk", r["agent_like"]),
                ("stuffed", r["signatures"] >= P.STUFFED_AT),
                ("european_pt", variety < 0.75),
                ("other_voice", r["foreign"] > 0),
            )
            if on
        )
        flu: Fluency | None = None
        if r["fluency"] is not None and a.lexical is not None:
            flu = combine_fluency(r["fluency"], a.fluency_anchors())
        personality = P.combine(
            anchored,
            r["signatures"],
            topical,
            variety,
            lang_ok=lang_ok,
            degenerate=kind is not None,
            agent=r["agent_like"],
            foreign=r["foreign"] > 0,
        )
        return ReplyScores(
            id=p.id,
            lang=p.lang,
            personality=round(personality, 4),
            agent_like=r["agent_like"],
            direct=r["direct"],
            language=r["language"],
            lang_match=lang_ok,
            fluency=(round(flu.score, 4) if flu else (0.0 if p.lang == "pt" else None)),
            br_markers=r["variety"].found if r["variety"] is not None else (),
            gates=gates,
            parts=dict(
                style=r["style"],
                base=base,
                anchored=anchored,
                topical=topical,
                topical_similarity=r["topical"],
                topical_margin=r["topical_margin"],
                answers_prompt=answered,
                signatures=r["signatures"],
                foreign=r["foreign"],
                agent_hits=r["agent_hits"],
                preamble=r["preamble"],
                degenerate=kind,
                in_language=r["in_language"],
                variety=variety,
                fluency=None
                if not flu
                else dict(
                    in_language=flu.in_language,
                    lexical=flu.lexical,
                    repetition=flu.repetition,
                    syntax=flu.syntax,
                    variety=flu.variety,
                    unknown=flu.raw.unknown,
                ),
            ),
        )

    def score_voice(self, prompts: list[Prompt], replies: list[str]) -> list[ReplyScores]:
        """Replies scored for voice alone: topicality is not judged (1.0), every other gate is.
        For replies that answer other prompts than the persona's (other voices' replies to their
        own prompts): off the persona's topics they would be zeroed whoever wrote them."""
        raws = self.raw_cached(prompts, replies)
        return [self.from_raw(p, x, r, 1.0) for p, x, r in zip(prompts, replies, raws)]

    def voice_not_told_apart(self) -> dict[str, float | None]:
        """The persona's languages where the calibration found voices the scorer never saw at or
        above the persona's own references (`Anchors.separates`), each with the share of those
        voices that reached the calibration's pass line (None: not recorded): there a passing
        personality score does not prove this voice."""
        a = self.anchors
        if a is None:
            return {}
        return {
            lg: a.unseen_voice_pass.get(lg) for lg in self.persona.languages if not a.separates(lg)
        }

    def score_reply(self, prompt: Prompt, reply: str) -> ReplyScores:
        return self.score([prompt], [reply])[0]


def _raw_to_json(r: dict) -> dict:
    out = dict(r)
    out["variety"] = asdict(r["variety"]) if r["variety"] is not None else None
    out["fluency"] = asdict(r["fluency"]) if r["fluency"] is not None else None
    return out


def _variety_from_json(d: dict) -> VarietyMarkers:
    return VarietyMarkers(d["br"], d["eu"], tuple(d["found"]), d["usage"])


def _raw_from_json(d: dict) -> dict:

    out = dict(d)
    out["agent_hits"] = tuple(d["agent_hits"])
    if d["variety"] is not None:
        out["variety"] = _variety_from_json(d["variety"])
    if d["fluency"] is not None:
        f = dict(d["fluency"])
        f["unknown"] = tuple(f["unknown"])
        f["variety"] = _variety_from_json(f["variety"])
        out["fluency"] = FluencyRaw(**f)
    return out


def load_anchors(persona: Persona) -> Anchors:
    path = persona.anchors_path
    hint = f"Run: molting calibrate --persona {persona.root}"
    if not path.is_file():
        raise ModelError(f"{path}: this persona has no fitted anchors yet. {hint}")
    raw = read_json(path, "anchors file")
    if not isinstance(raw, dict):
        raise ModelError(f"{path}: not a molting anchors file (expected a JSON object). {hint}")
    if raw.get("version") != SCORER_VERSION:
        raise ModelError(
            f"{path}: anchors are for scorer {raw.get('version')}, this molting has "
            f"{SCORER_VERSION}. {hint}"
        )
    problem = _value_problem(raw, Anchors, "", persona.languages)
    if problem:
        raise ModelError(f"{path}: {problem}; it is damaged or edited by hand. {hint}")
    try:
        anchors = Anchors.from_json(raw)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(
            f"{path}: not a molting anchors file ({type(err).__name__}: {err}). {hint}"
        ) from None
    now = bundle_fingerprints(persona)
    changed = sorted(
        k for k in set(now) | set(anchors.fingerprints) if anchors.fingerprints.get(k) != now.get(k)
    )
    if changed:
        raise ModelError(
            f"{path}: the bundle changed since calibration ({', '.join(changed)}). {hint}"
        )
    return anchors


def _value_problem(value: Any, tp: Any, key: str, languages: tuple[str, ...]) -> str | None:
    """What in anchors.json scoring could not use, named by its key ('topical.en.low'), checked
    against the Anchors dataclass's own types: a number where a number goes, and finite; a value
    for every persona language in each per-language table; None when all is well."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):  # `X | None`: null is fine
        if value is None and type(None) in typing.get_args(tp):
            return None
        tp = next(t for t in typing.get_args(tp) if t is not type(None))
    if tp in (int, float):
        if type(value) not in (int, float) or (tp is int and type(value) is not int):
            return f"'{key}' must be {'a whole number' if tp is int else 'a number'}, got {value!r}"
        return None if math.isfinite(value) else f"'{key}' must be a finite number, got {value!r}"
    if tp is str:
        return None if isinstance(value, str) else f"'{key}' must be text, got {value!r}"
    if not isinstance(value, dict):
        return f"'{key}' must be a JSON object, got {value!r}"
    if typing.get_origin(tp) is dict:
        item = typing.get_args(tp)[1]
        missing = [lg for lg in languages if lg not in value] if item is not str else []
        if missing:
            return f"'{key}' has no value for language '{missing[0]}'"
        return next(
            (
                p
                for k, v in value.items()
                if (p := _value_problem(v, item, f"{key}.{k}", languages))
            ),
            None,
        )
    for f in fields(tp):
        at = f"{key}.{f.name}" if key else f.name
        if f.name not in value:
            if f.default is MISSING and f.default_factory is MISSING:
                return f"'{at}' is missing"
            continue
        problem = _value_problem(value[f.name], typing.get_type_hints(tp)[f.name], at, languages)
        if problem:
            return problem
    return None
