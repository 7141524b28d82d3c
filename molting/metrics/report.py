"""Render METRICS_CALIBRATION.md (the persona metric's validity report) from a CalibrationResult."""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from molting.io import write_text_atomic
from molting.metrics import personality as P
from molting.metrics import scorer as S
from molting.metrics.calibration import PERSONALITY_SETS, CalibrationResult

SET_NOTES = {
    "reference": "the persona's own held-out replies",
    "reference_no_signature": "the same, signature expressions taken out",
    "generic": "generic-assistant replies to the same prompts",
    "agent": "agent talk (hand-written, or the reference behind an agent preamble)",
    "stuffed": "generic replies with 2–3 signature expressions pasted in",
    "near_miss": "the persona's reply to the nearest OTHER question (same subject)",
    "far": "the persona's reply to an unrelated question",
    "wrong_language": "a reference in another of the persona's languages",
    "fragment": "the reference's first three words",
    "echo": "the prompt said back",
    "loop": "the reference's opening repeated until the length cap",
}


def _f(x: float | None, nd: int = 2) -> str:
    return "–" if x is None or x != x else f"{x:.{nd}f}"


def _personality_table(r: CalibrationResult) -> str:
    langs = [lg for lg in ("en", "pt") if lg in r.personality.get("reference", {})]
    rows = []
    for kind in PERSONALITY_SETS:
        if kind not in r.personality:
            continue
        m, p = r.personality[kind], r.pass_rate[kind]
        rows.append(
            [
                kind,
                SET_NOTES.get(kind, ""),
                _f(m.get("all")),
                *[_f(m.get(lg)) for lg in langs],
                f"{p.get('all', 0):.0%}",
            ]
        )
    headers = ["replies", "what", "mean", *langs, f"≥ {r.threshold:g}"]
    return tabulate(rows, headers=headers, tablefmt="github")


def _validation_table(r: CalibrationResult) -> str:
    if not r.validation:
        return (
            "No validation replies in this bundle (add `validation/*.jsonl`: replies written by "
            "someone who never saw the training data, one row per `prompt_id`, `category`, "
            "`reply`)."
        )
    rows = []
    for cat, by_lang in r.validation.items():
        for lang, v in by_lang.items():
            rows.append(
                [cat, lang, v["n"], _f(v["mean"]), f"{v['pass_rate']:.0%}", _f(v["fluency_mean"])]
            )
    table = tabulate(
        rows,
        headers=["category", "lang", "n", "personality mean", f"≥ {r.threshold:g}", "PT fluency"],
        tablefmt="github",
    )
    checks = r.validation_checks()
    target_rows = [[c, lg, t, _f(m), "✅" if ok else "❌"] for c, lg, t, m, ok in checks]
    targets = tabulate(
        target_rows, headers=["category", "lang", "target", "measured", "met"], tablefmt="github"
    )
    out = (
        f"From {', '.join(f'`{f}`' for f in r.validation_files)}.\n\n"
        f"{table}\n\nTargets:\n\n{targets}"
    )
    if r.validation_by_file:  # each author's set alone: a target met only on the pool says less
        files = list(r.validation_by_file)
        per = {
            f: {(c, lg, t): (m, ok) for c, lg, t, m, ok in r.validation_checks(v)}
            for f, v in r.validation_by_file.items()
        }
        keys = [k[:3] for k in checks]
        rows = [
            [
                *k,
                *[
                    (f"{_f(per[f][k][0])} {'✅' if per[f][k][1] else '❌'}" if k in per[f] else "–")
                    for f in files
                ],
            ]
            for k in keys
        ]
        out += "\n\nThe same targets, each file alone:\n\n" + tabulate(
            rows,
            headers=["category", "lang", "target", *[f"`{f}`" for f in files]],
            tablefmt="github",
        )
    return out


def _discriminant_table(r: CalibrationResult) -> str:
    rows = [
        [
            lg,
            d["n_own"],
            d["n_impostor"],
            _f(d["auc"], 3),
            f"{d['own_pass_rate']:.0%}",
            f"{d['impostor_pass_rate']:.0%}",
            "yes" if d["separates"] else "**no**",
        ]
        for lg, d in r.discriminant.items()
    ]
    table = tabulate(
        rows,
        headers=[
            "lang",
            "own replies",
            "other voices",
            "AUC",
            f"own ≥ {r.threshold:g}",
            f"other voices ≥ {r.threshold:g}",
            "anchored between",
        ],
        tablefmt="github",
    )
    return (
        f"{table}\n\nVoice score = the anchored base score (style and directness), before "
        "topicality, language and the gates, which only lower it. Own replies: the eval split's "
        "references. Other voices: the held-out part of the impostor corpus (and the bundle's "
        "`negatives/impostor.jsonl`), each reply scored by a style model fitted without its voice, "
        "so these are voices the scorer never saw. *Anchored between*: unseen voices' "
        f"q{S.IMPOSTOR_QUANTILE} sits between the generic "
        f"median and the references' q{S.REFERENCE_QUANTILE} and is mapped to "
        f"{S.IMPOSTOR_ANCHOR_SCORE}; where it does not, the persona is not told apart from other "
        "voices and a passing gate does not prove this voice.\n\n"
        f"Shape habits the style model reads (each alone tells the persona's training replies "
        f"from the negatives with AUC ≥ {P.SHAPE_HABIT_AUC} or ≤ {1 - P.SHAPE_HABIT_AUC:.1f}): "
        + (", ".join(f"`{h}`" for h in r.shape_habits) or "none")
        + "."
    )


def _fluency_table(r: CalibrationResult) -> str:
    if not r.fluency:
        return "The persona has no Portuguese prompts: no fluency numbers."
    rows = []
    for k, v in r.fluency.items():
        parts = r.fluency_parts.get(k, {})
        rows.append(
            [
                k,
                _f(v),
                *[
                    _f(parts.get(p))
                    for p in ("in_language", "lexical", "repetition", "syntax", "variety")
                ],
            ]
        )
    return tabulate(
        rows,
        headers=["replies", "fluency", "in-language", "lexical", "repetition", "syntax", "variety"],
        tablefmt="github",
    )


def render(r: CalibrationResult) -> str:
    a = r.anchors
    t = r.train_sizes
    aucs = "; ".join(
        f"vs {neg}: " + ", ".join(f"{lg} {_f(v, 3)}" for lg, v in by.items())
        for neg, by in r.auc.items()
    )
    effect = (
        ", ".join(f"{lg} {v:+.2f}" for lg, v in r.catchphrase_effect.items())
        or "no reference uses one"
    )
    lines = [
        f"# Metrics calibration: {r.persona}",
        "",
        f"Scorer `{a.version}`; written by `molting calibrate`. Anchors are fitted on the "
        f"calibration split only ({t.get('calibration')} prompts) and the held-out part of the "
        f"generic sets; every number below is measured on the eval split ({t.get('eval')} prompts) "
        "and on validation replies, which nothing is fitted on.",
        "",
        "Bundle fingerprints (sha256/16): "
        + ", ".join(f"`{k}` {v}" for k, v in sorted(a.fingerprints.items())),
        "",
        "## Personality (0–10) on the eval split",
        "",
        _personality_table(r),
        "",
        f"- AUC of the personality score, held-out references vs built negatives: {aucs}.",
        "- Catchphrase effect (reference − the same reply without its signature expression): "
        f"{effect} (the bonus itself is at most {P.SIGNATURE_BONUS}; the metric-validity target is "
        "≤ 0.5).",
        f"- Fitted on {t.get('persona')} persona replies "
        f"({', '.join(f'{k[14:]} {v}' for k, v in t.items() if k.startswith('conversations_'))} "
        f"conversations) vs {t.get('generic')} generic replies and {t.get('impostor')} replies in "
        f"other voices; {t.get('agent')} agent-talk replies in the dataset "
        f"(a gate, not a style feature); {t.get('dropped_contaminated')} training conversation(s) "
        "dropped because their prompt near-duplicates a held-out prompt.",
        "- Anchors per language: base score "
        + "; ".join(
            f"{lg} {_f(a.base_generic[lg], 3)} (calibration generic median) ↦ "
            f"{S.GENERIC_ANCHOR_SCORE}, {_f(a.base_impostor[lg], 3)} (unseen voices "
            f"q{S.IMPOSTOR_QUANTILE}) ↦ "
            f"{S.IMPOSTOR_ANCHOR_SCORE if a.separates(lg) else 'not used: not between'}, "
            f"{_f(a.base_reference[lg], 3)} (calibration reference q{S.REFERENCE_QUANTILE}) ↦ "
            f"{P.ANCHORED_MAX}"
            for lg in a.base_generic
        )
        + "; topicality "
        "(similarity to the reference) "
        + "; ".join(
            f"{lg} {_f(t.low)} ↦ 0, {_f(t.high)} ↦ 1 (from {t.fitted_on})"
            for lg, t in a.topical.items()
        )
        + f"; fragments under "
        f"{a.degenerate.min_words} words, loops under compression ratio {a.degenerate.loop_ratio}.",
        "",
        "## Other voices: is it *this* persona? (discriminant validity)",
        "",
        _discriminant_table(r),
        "",
        "## Validation replies (written without seeing the training data)",
        "",
        _validation_table(r),
        "",
        "## PT-BR fluency (0–10) on the eval split's Portuguese prompts",
        "",
        _fluency_table(r),
        "",
        "## Cost",
        "",
        f"Fitting the scorer: {r.timings.get('fit_s')} s; scoring the eval and validation sets: "
        f"{r.timings.get('eval_s')} s.",
        "",
    ]
    return "\n".join(lines)


def write_report(result: CalibrationResult, path: Path) -> Path:
    return write_text_atomic(path, render(result))
