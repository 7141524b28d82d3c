"""Fit the anchors on the calibration split, then prove the metric on the eval split and on any
validation replies the bundle holds.

`calibrate(persona)` (CLI: `molting calibrate --persona DIR`) fits every anchor from calibration
replies only, writes them to the bundle's anchors.json, scores the eval split's references and
built negatives (molting.metrics.negatives) and the bundle's validation/*.jsonl replies (written
by people who never saw the training data), and returns what the report shows. The eval split
and the validation sets are never used to fit anything.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from molting.errors import ConfigError
from molting.io import read_jsonl, write_json_atomic
from molting.metrics import impostors as I
from molting.metrics import negatives as N
from molting.metrics import personality as P
from molting.metrics.agent import directness
from molting.metrics.fitdata import packaged
from molting.metrics.fluency import Anchor
from molting.metrics.scorer import (
    GENERIC_ANCHOR_SCORE,
    IMPOSTOR_QUANTILE,
    REFERENCE_QUANTILE,
    SCORER_VERSION,
    Anchors,
    Scorer,
    bundle_fingerprints,
)
from molting.metrics.topicality import SAME_PROMPT, TopicalAnchor
from molting.persona import Persona, Prompt, normalize_lang

FLUENT_QUANTILE = 0.10  # reference PT at or above this quantile of each part gets full credit
PERSONALITY_SETS = (
    "reference",
    "reference_no_signature",
    "generic",
    "agent",
    "stuffed",
    "near_miss",
    "far",
    "wrong_language",
    "fragment",
    "echo",
    "loop",
)
FLUENCY_SETS = (
    "reference",
    "european_pt",
    "loop",
    "shuffled",
    "garbled",
    "repeat_sentence",
    "wrong_language",
)
VALIDATION_DIR = "validation"
# Validity targets on replies the scorer never saw (per language): category → (statistic, op, value)
VALIDATION_TARGETS = {
    "in_voice_one": ("pass_rate", ">=", 0.95),
    "in_voice_none": ("pass_rate", ">=", 0.90),
    "european_pt": ("mean", "<=", 6.0),
    "off_topic": ("mean", "<=", 4.0),
    "degenerate": ("mean", "<=", 2.0),
    "generic": ("mean", "<=", 2.0),
    "agent": ("mean", "<=", 1.0),
    "code_heavy": ("fluency_mean", ">=", 8.0),
    "other_voice": (
        "pass_rate",
        "<=",
        0.10,
    ),  # same-prompt replies in other voices: not this persona
    "terse": (
        "zeroed_rate",
        "<=",
        0.02,
    ),  # the persona's own short answers: never zeroed by a hard gate
}
EXTRA_TARGETS = {
    ("european_pt", "fluency_auc_br_vs_eu"): (
        ">=",
        0.95,
    ),  # PT-BR fluency AUC, Brazilian vs European
    ("other_voice", "auc_own_vs_other"): (">=", 0.90),
}  # in-voice replies above other voices' replies
BRAZILIAN_CATEGORIES = (
    "in_voice_one",
    "in_voice_none",
)  # the persona's own variety, vs its European rewrites


# ---------------------------------------------------------------- fitting


def _near_miss(scorer: Scorer, prompts: list[Prompt]) -> list[tuple[str, str] | None]:
    """For each prompt, the persona's reply to the nearest other training question (and that
    question)."""
    pairs = scorer.train.pairs
    if not pairs:
        return [None] * len(prompts)
    pv = scorer.encoder.encode([p.prompt for p in prompts])
    qv = scorer.encoder.encode([x.prompt for x in pairs])
    langs = [x.lang for x in pairs]
    return [
        N.near_miss(pv, qv, pairs, langs, i, p.lang, SAME_PROMPT) for i, p in enumerate(prompts)
    ]


def _base_scores(scorer: Scorer, replies: list[str]) -> list[float]:
    style = scorer.style.proba(replies)
    return [P.base_score(float(s), directness(t).direct) for s, t in zip(style, replies)]


def unseen_voice_bases(scorer: Scorer) -> list[tuple[str, float]]:
    """(lang, base score) of every calibration impostor reply, each scored by a style model
    fitted without its voice: how a voice the scorer never saw scores (cross-fitting by voice).
    `calibrate` computes it once for the anchors and the validity report."""
    train = scorer.train
    rows = train.calibration_impostor
    fold = I.folds([r["voice"] for r in rows] + [v for v in train.voices if v])
    out = []
    for k in sorted(set(fold.values())):
        held = {v for v, f in fold.items() if f == k}
        mine = [r for r in rows if r["voice"] in held]
        if not mine:
            continue
        style = P.StyleClassifier(scorer.signatures).fit(*train.without_voices(held))
        probs = style.proba([r["reply"] for r in mine])
        out += [
            (r["lang"], P.base_score(float(s), directness(r["reply"]).direct))
            for r, s in zip(mine, probs)
        ]
    return out


def fit_anchors(scorer: Scorer, unseen: list[tuple[str, float]] | None = None) -> Anchors:
    """Every anchor from the calibration split and the held-out parts of the generic and
    impostor sets."""
    cal = scorer.persona.calibration_prompts()
    refs = [p.reference for p in cal]
    generic = [(p.lang, p.negatives["generic"]) for p in cal if p.negatives.get("generic")]
    generic += [(r["lang"], r["reply"]) for r in scorer.train.calibration_generic]
    on = scorer.raw(cal, refs)
    base_ref = [(p.lang, P.base_score(r["style"], r["direct"])) for p, r in zip(cal, on)]
    base_gen = list(zip([lg for lg, _ in generic], _base_scores(scorer, [t for _, t in generic])))
    base_imp = unseen_voice_bases(scorer) if unseen is None else unseen
    langs = scorer.persona.languages
    return Anchors(
        version=SCORER_VERSION,
        fingerprints=bundle_fingerprints(scorer.persona),
        base_generic=_per_language(base_gen, langs, 0.5, "generic replies"),
        base_reference=_per_language(base_ref, langs, REFERENCE_QUANTILE, "calibration references"),
        base_impostor=_per_language(base_imp, langs, IMPOSTOR_QUANTILE, "other voices' replies"),
        topical=_fit_topical(scorer, cal),
        degenerate=P.DegenerateRule.fit(refs),
        **_fit_fluency(scorer, [p for p in cal if p.lang == "pt"]),
    )


def _fit_topical(scorer: Scorer, cal: list[Prompt]) -> dict[str, TopicalAnchor]:
    """Per language: hand-written replies to this and to neighbouring questions when the
    calibration file has them, and always the persona's replies to other questions."""
    near = _near_miss(scorer, cal)
    out = {}
    for lang in scorer.persona.languages:
        ps = [p for p in cal if p.lang == lang]
        if not ps:
            ps = cal  # no calibration prompt in this language: the other languages' anchors
        idx = [cal.index(p) for p in ps]

        def sim(items):
            return list(
                scorer.topicality.score([r for _, r in items], [p.reference for p, _ in items])
            )

        on = sim([(p, p.negatives["in_voice"]) for p in ps if p.negatives.get("in_voice")])
        off = sim([(p, p.negatives["off_topic"]) for p in ps if p.negatives.get("off_topic")])
        negatives = sim(
            [(cal[i], near[i][0]) for i in idx if near[i]] + [(cal[i], N.far(cal, i)) for i in idx]
        )
        out[lang] = TopicalAnchor.fit(on, off, negatives)
    return out


def _per_language(
    rows: list[tuple[str, float]], langs: tuple[str, ...], q: float, what: str
) -> dict[str, float]:
    """The q-quantile of each language's values (all languages pooled where one has none)."""
    if not rows:
        raise ConfigError(
            f"no {what} to anchor on; the bundle's calibration split and the packaged sets are "
            "needed."
        )
    pooled = float(np.quantile([v for _, v in rows], q))
    out = {}
    for lang in langs:
        vals = [v for lg, v in rows if lg == lang]
        out[lang] = float(np.quantile(vals, q)) if len(vals) >= PER_LANGUAGE_MIN else pooled
    return out


PER_LANGUAGE_MIN = 8  # fewer calibration values in a language: anchor on all languages pooled


def _fit_fluency(scorer: Scorer, pt: list[Prompt]) -> dict[str, Anchor | None]:
    if not pt or scorer.lm is None:
        return {"lexical": None, "repetition": None, "syntax": None}
    flu = {
        k: [r["fluency"] for r in scorer.raw(pt, [_reply(p, k) for p in pt])]
        for k in ("reference", "garbled", "repeat_sentence", "shuffled")
    }

    def q(xs, p):
        return float(np.quantile(xs, p))

    ref = flu["reference"]
    return {
        "lexical": Anchor(
            q([f.known_rate for f in flu["garbled"]], 0.5),
            q([f.known_rate for f in ref], FLUENT_QUANTILE),
        ),
        # the mildest built degeneration (the longest sentence said three more times) marks 0
        "repetition": Anchor(
            q([f.repetition for f in flu["repeat_sentence"]], 0.5),
            q([f.repetition for f in ref], FLUENT_QUANTILE),
        ),
        "syntax": Anchor(
            q([f.slor for f in flu["shuffled"]], 0.5), q([f.slor for f in ref], FLUENT_QUANTILE)
        ),
    }


def _reply(p: Prompt, kind: str) -> str:
    return p.reference if kind == "reference" else getattr(N, kind)(p)


# ---------------------------------------------------------------- proving


def auc(pos: list[float], neg: list[float]) -> float:
    """Mann–Whitney AUC: P(random positive > random negative), ties count half."""
    if not pos or not neg:
        return float("nan")
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def unseen_voice_pass(
    anchors: Anchors, unseen: list[tuple[str, float]], langs: tuple[str, ...], threshold: float
) -> dict[str, float]:
    """Per language: the share of voices the scorer never saw whose voice score (anchored base)
    reaches `threshold` (all languages pooled where one has none)."""
    voice = [(lg, anchors.anchored(b, lg) >= threshold) for lg, b in unseen]
    pooled = float(np.mean([v for _, v in voice])) if voice else 0.0
    return {
        lg: float(np.mean(mine)) if (mine := [v for g, v in voice if g == lg]) else pooled
        for lg in langs
    }


def discriminant(
    scorer: Scorer, threshold: float, unseen: list[tuple[str, float]] | None = None
) -> dict[str, dict[str, float]]:
    """Per language: the held-out references against other voices the scorer never saw
    (cross-fitted by voice), on the voice score — anchored(base), what topicality, language and
    the gates then only lower. AUC, the share of other voices reaching `threshold`, counts."""
    anchors = scorer.anchors
    refs = scorer.persona.eval_prompts()
    raws = scorer.raw_cached(refs, [p.reference for p in refs])
    own = [
        (p.lang, anchors.anchored(P.base_score(r["style"], r["direct"]), p.lang))
        for p, r in zip(refs, raws)
    ]
    unseen = unseen_voice_bases(scorer) if unseen is None else unseen
    other = [(lg, anchors.anchored(b, lg)) for lg, b in unseen]
    out = {}
    for lang in scorer.persona.languages:
        mine, theirs = [v for lg, v in own if lg == lang], [v for lg, v in other if lg == lang]
        out[lang] = {
            "auc": auc(mine, theirs),
            "impostor_pass_rate": float(np.mean([v >= threshold for v in theirs]))
            if theirs
            else float("nan"),
            "own_pass_rate": float(np.mean([v >= threshold for v in mine]))
            if mine
            else float("nan"),
            "n_own": len(mine),
            "n_impostor": len(theirs),
            "separates": bool(anchors.separates(lang)),
        }
    return out


def eval_reply_sets(
    scorer: Scorer, prompts: list[Prompt]
) -> dict[str, tuple[list[Prompt], list[str]]]:
    """Every personality reply set on `prompts`: the references and the built negatives."""
    card, pool = scorer.persona.card, list(packaged("generic"))
    near = _near_miss(scorer, prompts)
    no_sig = [
        (p, P.strip_signatures(scorer.signatures, p.reference))
        for p in prompts
        if P.count_signatures(scorer.signatures, p.reference)
    ]
    sets = {
        "reference": (prompts, [p.reference for p in prompts]),
        "reference_no_signature": ([p for p, _ in no_sig], [t for _, t in no_sig]),
        "generic": (prompts, [N.generic(p, pool) for p in prompts]),
        "agent": (prompts, [N.agent(p) for p in prompts]),
        "stuffed": (prompts, [N.stuffed(p, card, N.generic(p, pool)) for p in prompts]),
        "near_miss": ([p for p, x in zip(prompts, near) if x], [x[0] for x in near if x]),
        "far": (prompts, [N.far(prompts, i) for i in range(len(prompts))]),
        "fragment": (prompts, [N.fragment(p) for p in prompts]),
        "echo": (prompts, [N.echo(p) for p in prompts]),
        "loop": (prompts, [N.loop(p) for p in prompts]),
    }
    wrong = [(p, N.wrong_language(prompts, i)) for i, p in enumerate(prompts)]
    sets["wrong_language"] = ([p for p, w in wrong if w], [w for _, w in wrong if w])
    return sets


@dataclass
class CalibrationResult:
    persona: str
    anchors: Anchors
    personality: dict[str, dict[str, float]]  # set → lang|"all" → mean
    pass_rate: dict[str, dict[str, float]]  # set → lang|"all" → share ≥ threshold
    auc: dict[str, dict[str, float]]  # "generic"|"agent" → lang → AUC of references vs that set
    catchphrase_effect: dict[str, float]  # lang → mean (reference − reference without signature)
    fluency: dict[str, float]  # PT set → mean
    fluency_parts: dict[str, dict[str, float]]
    validation: dict[
        str, dict[str, dict[str, float]]
    ]  # category → lang → {n, mean, pass_rate, fluency_mean}
    validation_files: list[str]
    threshold: float
    train_sizes: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    validation_by_file: dict[str, dict] = field(
        default_factory=dict
    )  # file → the same as `validation`, that file alone
    discriminant: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # lang → own vs unseen voices
    shape_habits: list[str] = field(default_factory=list)  # the shape features the style reads

    def validation_checks(
        self, validation: dict | None = None
    ) -> list[tuple[str, str, str, float, bool]]:
        """(category, lang, target text, measured, met) for every target with data (`validation`:
        another set of results than the whole, e.g. one file's)."""
        validation = self.validation if validation is None else validation
        out = []
        for cat, (stat, op, value) in VALIDATION_TARGETS.items():
            for lang, row in sorted(validation.get(cat, {}).items()):
                measured = row.get(stat)
                if measured is None or np.isnan(measured):
                    continue
                met = measured >= value if op == ">=" else measured <= value
                out.append((cat, lang, f"{stat.replace('_', ' ')} {op} {value:g}", measured, met))
        for (cat, stat), (op, value) in EXTRA_TARGETS.items():
            for lang, row in sorted(validation.get(cat, {}).items()):
                if stat in row:
                    met = row[stat] >= value if op == ">=" else row[stat] <= value
                    out.append(
                        (cat, lang, f"{stat.replace('_', ' ')} {op} {value:g}", row[stat], met)
                    )
        return out


def _by_lang(scores, key=lambda s: s.personality) -> dict[str, float]:
    groups: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        groups[s.lang].append(key(s))
        groups["all"].append(key(s))
    return {k: float(np.mean(v)) for k, v in sorted(groups.items())}


def evaluate(
    scorer: Scorer, threshold: float, unseen: list[tuple[str, float]] | None = None
) -> dict:
    prompts = scorer.persona.eval_prompts()
    pers, passed, scored = {}, {}, {}
    for kind, (ps, replies) in eval_reply_sets(scorer, prompts).items():
        if not ps:
            continue
        scores = scorer.score(ps, replies)
        scored[kind] = scores
        pers[kind] = _by_lang(scores)
        passed[kind] = _by_lang(scores, key=lambda s: float(s.personality >= threshold))
    aucs = {
        neg: {
            lang: auc(
                [s.personality for s in scored["reference"] if s.lang == lang],
                [s.personality for s in scored[neg] if s.lang == lang],
            )
            for lang in scorer.persona.languages
        }
        for neg in ("generic", "agent")
    }
    effect = {}
    if "reference_no_signature" in scored:
        ref = {s.id: s.personality for s in scored["reference"]}
        diffs = defaultdict(list)
        for s in scored["reference_no_signature"]:
            diffs[s.lang].append(ref[s.id] - s.personality)
        effect = {lang: float(np.mean(v)) for lang, v in sorted(diffs.items())}
    flu, parts = _fluency_sets(scorer, prompts)
    return dict(
        personality=pers,
        pass_rate=passed,
        auc=aucs,
        catchphrase_effect=effect,
        fluency=flu,
        fluency_parts=parts,
        discriminant=discriminant(scorer, threshold, unseen),
    )


def _fluency_sets(scorer: Scorer, prompts: list[Prompt]) -> tuple[dict, dict]:
    pt = [p for p in prompts if p.lang == "pt"]
    if not pt or scorer.anchors.lexical is None:
        return {}, {}
    flu, parts = {}, {}
    for kind in FLUENCY_SETS:
        if kind == "european_pt":
            items = [(p, p.negatives["european_pt"]) for p in pt if p.negatives.get("european_pt")]
        elif kind == "wrong_language":
            items = [
                (p, w)
                for i, p in enumerate(prompts)
                if p.lang == "pt" and (w := N.wrong_language(prompts, i))
            ]
        else:
            items = [(p, _reply(p, kind)) for p in pt]
        if not items:
            continue
        scores = scorer.score([p for p, _ in items], [r for _, r in items])
        flu[kind] = float(np.mean([s.fluency for s in scores]))
        keys = ("in_language", "lexical", "repetition", "syntax", "variety")
        parts[kind] = {
            k: float(np.mean([(s.parts["fluency"] or {}).get(k, 0.0) for s in scores]))
            for k in keys
        }
    return flu, parts


def load_validation(persona: Persona) -> tuple[list[dict], list[str]]:
    """Rows of DIR/validation/*.jsonl: {"prompt_id", "lang", "category", "reply"} (+ optional
    "kind")."""
    folder = persona.root / VALIDATION_DIR
    if not folder.is_dir():
        return [], []
    by_id = {p.id: p for p in persona.eval_prompts() + persona.calibration_prompts()}
    rows, files = [], []
    for path in sorted(folder.glob("*.jsonl")):
        files.append(str(path.relative_to(persona.root)))
        for n, row in enumerate(read_jsonl(path, "validation file"), start=1):
            where = f"{path}: line {n}"
            if row.get("prompt_id") not in by_id:
                raise ConfigError(
                    f"{where}: prompt_id {row.get('prompt_id')!r} is not an eval or calibration "
                    "prompt."
                )
            if not isinstance(row.get("reply"), str) or not isinstance(row.get("category"), str):
                raise ConfigError(f"{where}: needs 'category' and 'reply' text.")
            prompt = by_id[row["prompt_id"]]
            if "lang" in row and normalize_lang(row["lang"], where) != prompt.lang:
                raise ConfigError(
                    f"{where}: lang {row['lang']!r} differs from its prompt's ({prompt.lang})."
                )
            rows.append(
                {
                    "prompt": prompt,
                    "category": row["category"],
                    "reply": row["reply"],
                    "file": str(path.relative_to(persona.root)),
                }
            )
    return rows, files


def validate(
    scorer: Scorer, rows: list[dict], threshold: float
) -> dict[str, dict[str, dict[str, float]]]:
    if not rows:
        return {}
    scores = scorer.score([r["prompt"] for r in rows], [r["reply"] for r in rows])
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for r, s in zip(rows, scores):
        groups[(r["category"], s.lang)].append(s)
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (cat, lang), ss in sorted(groups.items()):
        flu = [s.fluency for s in ss if s.fluency is not None]
        out[cat][lang] = {
            "n": len(ss),
            "mean": float(np.mean([s.personality for s in ss])),
            "pass_rate": float(np.mean([s.personality >= threshold for s in ss])),
            "zeroed_rate": float(np.mean([s.personality == 0.0 for s in ss])),
            "fluency_mean": float(np.mean(flu)) if flu else float("nan"),
        }
    brazilian = [
        s.fluency
        for (cat, lang), ss in groups.items()
        if lang == "pt" and cat in BRAZILIAN_CATEGORIES
        for s in ss
    ]
    european = [s.fluency for s in groups.get(("european_pt", "pt"), [])]
    if brazilian and european:  # PT-BR fluency must tell the two varieties apart, reply by reply
        out["european_pt"]["pt"]["fluency_auc_br_vs_eu"] = auc(brazilian, european)
    for lang in out.get(
        "other_voice", {}
    ):  # in-voice replies must outscore other voices', reply by reply
        own = [
            s.personality
            for (cat, lg), ss in groups.items()
            if lg == lang and cat in BRAZILIAN_CATEGORIES
            for s in ss
        ]
        other = [s.personality for s in groups[("other_voice", lang)]]
        if own:
            out["other_voice"][lang]["auc_own_vs_other"] = auc(own, other)
    return dict(out)


def calibrate(
    persona: Persona, threshold: float, *, write_anchors: bool = True, scorer: Scorer | None = None
) -> CalibrationResult:
    t0 = time.perf_counter()
    scorer = scorer or Scorer(persona, anchors=None)
    t_fit = time.perf_counter() - t0
    unseen = unseen_voice_bases(scorer)  # cross-fitting: once, for the anchors and the report
    anchors = fit_anchors(scorer, unseen)
    anchors = replace(
        anchors,
        unseen_voice_pass=unseen_voice_pass(anchors, unseen, persona.languages, threshold),
        voice_threshold=float(threshold),
    )
    scorer.anchors = anchors
    if write_anchors:
        write_json_atomic(persona.anchors_path, anchors.to_json())
    t1 = time.perf_counter()
    ev = evaluate(scorer, threshold, unseen)
    rows, files = load_validation(persona)
    validation = validate(scorer, rows, threshold)
    by_file = (
        {f: validate(scorer, [r for r in rows if r["file"] == f], threshold) for f in files}
        if len(files) > 1
        else {}
    )
    train = scorer.train
    return CalibrationResult(
        persona=persona.name,
        anchors=anchors,
        validation=validation,
        validation_files=files,
        threshold=threshold,
        validation_by_file=by_file,
        train_sizes=dict(
            persona=len(train.of("persona")),
            agent=len(train.agent),
            generic=len(train.of("generic")),
            impostor=len(train.of("impostor")),
            pairs=len(train.pairs),
            dropped_contaminated=train.dropped_contaminated,
            calibration=len(persona.calibration_prompts()),
            eval=len(persona.eval_prompts()),
            **{f"conversations_{k}": v for k, v in sorted(train.conversation_langs.items())},
        ),
        timings=dict(fit_s=round(t_fit, 1), eval_s=round(time.perf_counter() - t1, 1)),
        shape_habits=scorer.style.shape.habits(),
        **ev,
    )


__all__ = [
    "CalibrationResult",
    "auc",
    "calibrate",
    "evaluate",
    "fit_anchors",
    "GENERIC_ANCHOR_SCORE",
]


def report_path_default(persona: Persona) -> Path:
    return persona.root / "METRICS_CALIBRATION.md"
