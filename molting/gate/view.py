"""What a gate report shows, computed once from EvalResults: the models as columns, one cell per
prompt × model with the full reply, its score and why it scored so, the charts' series on fixed
scales, the criteria and the run facts. comparison.md, comparison.png and report.html all render
this view, so the three never disagree.

    >>> v = build_view(results)
    >>> v.lowest[0].cell.why       # the lowest-scoring candidate reply, and what cut it
    'off topic: topical credit 0.00, margin -0.07; closer to the answer of: “…”; degenerate: loop'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from molting.gate.criteria import Check, model_checks, verdict
from molting.gate.records import EvalResults
from molting.metrics import aggregate

LANG_NAMES = {"en": "EN", "pt": "PT-BR"}


@dataclass(frozen=True)
class Cell:
    """One model's reply to one prompt, and its score explained."""

    model: str
    reply: str
    score: float
    gates: tuple[str, ...]
    why: str  # one line: what cut the score, with the numbers
    named: tuple[tuple[str, str], ...]  # the parts a reader asks for first, in a fixed order
    parts: tuple[tuple[str, str], ...]  # every key of ReplyScores.parts, nested ones flattened
    deltas: dict[str, float] = field(default_factory=dict)  # candidate cells: baseline → Δ score


@dataclass(frozen=True)
class Row:
    index: int
    id: str
    lang: str
    category: str
    prompt: str
    reference: str
    history: tuple[tuple[str, str], ...]
    cells: dict[str, Cell]


@dataclass(frozen=True)
class Bar:
    model: str
    role: str  # "baseline" | "candidate"
    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Series:
    """One chart panel: a metric on a fixed scale with its target."""

    title: str
    scale: float  # the axis runs from 0 to this (10 or 100)
    unit: str  # "" or "%"
    target: float
    better: str  # "≥" or "≤"
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class CriterionRow:
    metric: str
    target: str
    values: dict[str, str]  # model → shown value
    passed: dict[str, bool]  # candidate → pass/fail
    deltas: dict[str, str]  # candidate → "base: +0.10 [−0.2, +0.4]; …"


@dataclass(frozen=True)
class Lowest:
    candidate: str
    row: Row
    cell: Cell


@dataclass
class ReportView:
    title: str
    persona: str
    models: list[str]
    baselines: list[str]
    candidates: list[str]
    verdicts: dict[str, str]  # candidate → Markdown verdict line
    failed: dict[str, list[str]]  # candidate → metrics of the criteria it missed
    n_checks: dict[str, int]  # candidate → criteria checked
    n_prompts: int
    counts: str  # "35 EN, 35 PT-BR"
    criteria: list[CriterionRow]
    comparisons: list[tuple[str, Check]]  # (candidate, check)
    controls: list[dict[str, str]]
    series: list[Series]
    rows: list[Row]
    lowest: list[Lowest]  # per candidate, its lowest-scoring reply
    facts: dict[str, list[tuple[str, str]]]  # section → rows
    libraries: list[tuple[str, str]]
    languages: list[str]
    categories: list[str]
    gates: list[str]
    warning: str = ""  # said next to the verdict: the metric does not tell this voice apart


# ---------------------------------------------------------------- score parts


def flatten(parts: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Every key/value of a parts dict, nested dicts as dotted keys, values as short text.

    >>> flatten({"style": 0.91234, "fluency": {"lexical": 0.5}, "agent_hits": ["en.start_by"]})
    [('style', '0.912'), ('fluency.lexical', '0.500'), ('agent_hits', 'en.start_by')]
    """
    out: list[tuple[str, str]] = []
    for key, value in parts.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += flatten(value, f"{name}.")
        else:
            out.append((name, show(value)))
    return out


def show(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(show(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else "none"
    return str(value)


def _num(parts: dict, key: str) -> float | None:
    v = parts.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


# the retrieval model's verdict on a reply the lexical measures cut (None: it was not asked)
ANSWERS = {
    True: "; the retrieval model finds it answers this prompt",
    False: "; the retrieval model does not find it answers this prompt",
}


def named_parts(s: Any, nearest: str | None) -> list[tuple[str, str]]:
    """The parts a reader asks for first: style, topicality and its nearest competing question,
    language share, variety markers, degenerate kind, agent-pattern ids."""
    p = s.parts or {}
    share = _num(p, "in_language")
    return [
        ("gates", ", ".join(s.gates) or "none"),
        (
            "style",
            f"probability {_fmt(_num(p, 'style'), '.2f')}, voice "
            f"{_fmt(_num(p, 'anchored'), '.1f')} of 10",
        ),
        (
            "topicality",
            f"credit {_fmt(_num(p, 'topical'), '.2f')} (similarity to the reference "
            f"{_fmt(_num(p, 'topical_similarity'), '.2f')}, margin "
            f"{_fmt(_num(p, 'topical_margin'), '+.2f')}"
            f"{ANSWERS.get(p.get('answers_prompt'), '')})",
        ),
        ("nearest competing question", nearest or "–"),
        (
            "language",
            f"{_fmt(None if share is None else 100 * share, '.0f')}% in "
            f"{LANG_NAMES.get(s.lang, s.lang)}, detected {s.language}",
        ),
        ("variety markers", ", ".join(s.br_markers) or "none"),
        ("degenerate", show(p.get("degenerate")) if p.get("degenerate") else "no"),
        ("agent patterns", ", ".join(p.get("agent_hits") or ()) or "none"),
        *([("PT-BR fluency", f"{s.fluency:.2f} of 10")] if s.fluency is not None else []),
    ]


def why(s: Any, nearest: str | None) -> str:
    """One line: what cut the score, each gate with its evidence; unknown gates by name."""
    p = s.parts or {}
    reasons = []
    for g in s.gates:
        if g == "off_topic":
            margin = _num(p, "topical_margin")
            closer = (
                f"; closer to the answer of: “{_short(nearest)}”"
                if nearest and margin is not None and margin < 0
                else ""
            )
            reasons.append(
                f"off topic: topical credit {_fmt(_num(p, 'topical'), '.2f')}, margin "
                f"{_fmt(margin, '+.2f')}{closer}{ANSWERS.get(p.get('answers_prompt'), '')}"
            )
        elif g == "wrong_language":
            share = _num(p, "in_language")
            reasons.append(
                f"wrong language: {_fmt(None if share is None else 100 * share, '.0f')}% in "
                f"{LANG_NAMES.get(s.lang, s.lang)}, detected {s.language}"
            )
        elif g == "degenerate":
            reasons.append(f"degenerate: {p.get('degenerate') or 'yes'}")
        elif g == "agent_talk":
            reasons.append(f"agent talk: {', '.join(p.get('agent_hits') or ()) or 'flagged'}")
        elif g == "stuffed":
            reasons.append(f"stuffed: {p.get('signatures')} signature expressions")
        elif g == "european_pt":
            reasons.append(
                "European Portuguese: "
                + (", ".join(m for m in s.br_markers if m.startswith("eu:")) or "markers")
            )
        else:
            reasons.append(g.replace("_", " "))
    if reasons:
        return "; ".join(reasons)
    return (
        f"no gate: voice {_fmt(_num(p, 'anchored'), '.1f')} of 10 × topical credit "
        f"{_fmt(_num(p, 'topical'), '.2f')}" + ("" if s.direct else ", not answer-first")
    )


def _short(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ---------------------------------------------------------------- the view


def build_view(results: EvalResults) -> ReportView:
    candidates = list(results.candidates)
    baselines = results.baselines()
    checks = {m: results.checks(m) for m in results.models}
    rows = _rows(results, baselines, candidates)
    persona = str(results.facts.get("persona") or "")
    langs = results.prompt_langs()
    return ReportView(
        title=f"Persona gate{': ' + persona if persona else ''} — baseline vs candidate",
        persona=persona,
        models=list(results.models),
        baselines=baselines,
        candidates=candidates,
        verdicts={c: verdict(checks[c]) for c in candidates},
        failed={c: [k.metric for k in checks[c] if not k.passed] for c in candidates},
        n_checks={c: len(checks[c]) for c in candidates},
        n_prompts=len(results.prompts),
        counts=", ".join(
            f"{sum(p.lang == lg for p in results.prompts)} {LANG_NAMES.get(lg, lg)}" for lg in langs
        ),
        criteria=_criteria(results, checks, baselines, candidates),
        comparisons=[
            (c, k)
            for c in candidates
            for k in checks[c]
            if k.name.startswith(("beats_", "no_agent_regression_"))
        ],
        controls=_controls(results),
        series=chart_series(results),
        rows=rows,
        lowest=[_lowest(rows, c) for c in candidates],
        facts=fact_sections(results.facts),
        libraries=sorted((results.facts.get("libraries") or {}).items()),
        languages=list(langs),
        categories=sorted({r.category for r in rows}),
        gates=sorted({g for r in rows for c in r.cells.values() for g in c.gates}),
        warning=weak_voice_warning(results.facts),
    )


def weak_voice_warning(facts: dict[str, Any]) -> str:
    """One line when calibration did not tell the persona's voice from voices the scorer never
    saw (facts["voice_not_told_apart"]: language → the share of those voices that reached the
    pass line on voice alone; a list of languages in older results): a passing personality
    criterion would not prove it."""
    weak = facts.get("voice_not_told_apart") or {}
    if not weak:
        return ""
    rates = weak if isinstance(weak, dict) else dict.fromkeys(weak)
    langs = ", ".join(LANG_NAMES.get(lg, lg) for lg in rates)
    known = [f"{v:.0%} ({LANG_NAMES.get(lg, lg)})" for lg, v in rates.items() if v is not None]
    how = (
        f"in calibration, replies in voices the scorer never saw reached the pass line on voice "
        f"alone in {' and '.join(known)} of cases, and their top tenth"
        if known
        else "in calibration, the top tenth of replies in voices the scorer never saw"
    )
    return (
        f"Voice not told apart ({langs}): {how} scores at least as high as the persona's own "
        "references' bottom tenth, so a passing personality criterion does not prove this voice "
        "there (METRICS_CALIBRATION.md, section “Other voices”; add other people's replies to "
        "the same kind of prompts as negatives/impostor.jsonl and recalibrate)."
    )


def _rows(results: EvalResults, baselines: list[str], candidates: list[str]) -> list[Row]:
    rows = []
    for i, p in enumerate(results.prompts):
        cells = {}
        for m in results.models:
            s = results.scores[m][i]
            nearest = (results.nearest.get(m) or [None] * len(results.prompts))[i]
            deltas = (
                {b: round(s.personality - results.scores[b][i].personality, 4) for b in baselines}
                if m in candidates
                else {}
            )
            cells[m] = Cell(
                m,
                results.generations[m][i].reply,
                s.personality,
                tuple(s.gates),
                why(s, nearest),
                tuple(named_parts(s, nearest)),
                tuple(flatten(s.parts or {})),
                deltas,
            )
        rows.append(
            Row(i, p.id, p.lang, p.category or "–", p.prompt, p.reference, p.history, cells)
        )
    return rows


def _lowest(rows: list[Row], candidate: str) -> Lowest:
    row = min(
        rows, key=lambda r: (r.cells[candidate].score, -len(r.cells[candidate].gates), r.index)
    )
    return Lowest(candidate, row, row.cells[candidate])


def _criteria(
    results: EvalResults,
    checks: dict[str, list[Check]],
    baselines: list[str],
    candidates: list[str],
) -> list[CriterionRow]:
    out = []
    first = [
        k
        for k in checks[candidates[0]]
        if not k.name.startswith(("beats_", "no_agent_regression_"))
    ]
    for k in first:
        values = {
            m: next((c.shown for c in checks[m] if c.name == k.name), "–") for m in results.models
        }
        values |= {b: v.split(" [")[0] for b, v in values.items() if b in baselines}
        passed = {
            c: next((x.passed for x in checks[c] if x.name == k.name), False) for c in candidates
        }
        deltas = {}
        for c in candidates:
            parts = []
            for comp in (x for x in results.comparisons if x.candidate == c):
                iv = (
                    comp.personality
                    if k.name == "personality"
                    else comp.fluency
                    if k.name == "pt_fluency"
                    else None
                )
                if iv is not None:
                    parts.append(
                        f"{comp.baseline}: {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]"
                    )
            deltas[c] = "; ".join(parts) or "–"
        out.append(CriterionRow(k.metric, k.target, values, passed, deltas))
    return out


def _controls(results: EvalResults) -> list[dict[str, str]]:
    expect = {
        "reference": "pass every criterion",
        "generic": "fail personality",
        "agent": "fail personality",
        "impostor": "fail personality (voice alone)",
    }
    out = []
    for kind, scores in results.controls.items():
        cs = model_checks(results.criteria, scores, results.prompt_langs())
        pers = next(c for c in cs if c.name == "personality")
        ok = all(c.passed for c in cs) if kind == "reference" else not pers.passed
        out.append(
            {
                "kind": kind,
                "expected": expect.get(kind, ""),
                "personality": pers.shown,
                "failed": ", ".join(c.metric for c in cs if not c.passed) or "none",
                "ok": "✅" if ok else "❌",
            }
        )
    return out


def chart_series(results: EvalResults) -> list[Series]:
    """The criteria as chart panels on fixed scales (0–10, 0–100 %), each with its target and
    every model's 95% interval (mean: normal approximation; rates: Wilson)."""
    c = results.criteria
    summ = {m: aggregate(results.scores[m]) for m in results.models}
    langs = results.prompt_langs()

    def bars(group: str, attr: str, scale: float) -> tuple[Bar, ...]:
        out = []
        for m in results.models:
            s = summ[m].get(group)
            v = getattr(s, attr) if s is not None else None
            mid = None if v is None else (v.mean if hasattr(v, "mean") else v.rate)
            k = 1 if scale == 10 else 100
            out.append(
                Bar(
                    m,
                    "candidate" if m in results.candidates else "baseline",
                    None if mid is None else k * mid,
                    None if v is None else k * v.low,
                    None if v is None else k * v.high,
                )
            )
        return tuple(out)

    out = [
        Series("Personality (0–10)", 10, "", c.personality_min, "≥", bars("all", "personality", 10))
    ]
    out += [
        Series(
            f"Agent-phrase rate {LANG_NAMES.get(lg, lg)} (%)",
            100,
            "%",
            100 * c.agent_rate_max,
            "≤",
            bars(lg, "agent_rate", 100),
        )
        for lg in langs
    ]
    out.append(
        Series(
            "Directness (%)", 100, "%", 100 * c.directness_min, "≥", bars("all", "direct_rate", 100)
        )
    )
    if "pt" in langs:
        out.append(
            Series(
                "PT prompts answered in PT (%)",
                100,
                "%",
                100 * c.pt_language_match_min,
                "≥",
                bars("pt", "lang_match_rate", 100),
            )
        )
        out.append(
            Series("PT-BR fluency (0–10)", 10, "", c.pt_fluency_min, "≥", bars("pt", "fluency", 10))
        )
    return out


# ---------------------------------------------------------------- run facts

_RUN_KEYS = (
    "persona",
    "persona_dir",
    "prompts",
    "prompts_hash",
    "scorer_version",
    "rescored_by",
    "judge",
)
_MACHINE_KEYS = ("python", "platform", "device", "dtype", "quantization", "substitution")
_BASE_KEYS = ("base_model", "base_fingerprint")


def fact_sections(facts: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Run facts as readable sections: the models (source, adapter sha256), the run, generation,
    the machine; anything else under 'Other'. Libraries are listed on their own."""
    used: set[str] = {"libraries", "models", "generation"}
    models = []
    for name, m in (facts.get("models") or {}).items():
        if not isinstance(m, dict):
            continue
        src = m.get("source")
        if m.get("kind") == "base":
            src = facts.get("base_model") or src or "the base model (id not recorded in this run)"
        detail = [f"{m.get('kind', '?')}: {src}"]
        if m.get("sha256"):
            detail.append(f"adapter sha256 {m['sha256']}")
        if m.get("note"):
            detail.append(str(m["note"]))
        models.append((name, "; ".join(detail)))
    for key in _BASE_KEYS:
        if key in facts:
            models.append((key.replace("_", " "), show(facts[key])))
            used.add(key)
    sections = {"Models": models}

    def pick(keys: tuple[str, ...]) -> list[tuple[str, str]]:
        used.update(k for k in keys if k in facts)
        return [(k.replace("_", " "), show(facts[k])) for k in keys if k in facts]

    sections["Run"] = pick(_RUN_KEYS)
    gen = facts.get("generation")
    sections["Generation"] = (
        [(k.replace("_", " "), show(v)) for k, v in gen.items()] if isinstance(gen, dict) else []
    )
    sections["Generation"] += pick(
        (
            "models_loaded",
            "generator",
            "cache_hits",
            "cache_misses",
            "tokens_generated",
            "generation_seconds",
            "wall_seconds",
        )
    )
    sections["Machine"] = pick(_MACHINE_KEYS)
    sections["Other"] = [(k.replace("_", " "), show(v)) for k, v in facts.items() if k not in used]
    return {k: v for k, v in sections.items() if v}


BASELINE_COLOURS = ("#8c8c8c", "#b5b5b5", "#5f5f5f", "#d0d0d0")
CANDIDATE_COLOURS = ("#1f6fb4", "#e07b00", "#2a9d55", "#b83280")


def colours(models: list[str], candidates: list[str]) -> dict[str, str]:
    """Baselines in greys, candidates in colours: one colour per model, the same in the PNG and
    the page."""
    b = [m for m in models if m not in candidates]
    out = {m: BASELINE_COLOURS[i % len(BASELINE_COLOURS)] for i, m in enumerate(b)}
    return out | {
        m: CANDIDATE_COLOURS[i % len(CANDIDATE_COLOURS)] for i, m in enumerate(candidates)
    }
