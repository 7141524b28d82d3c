"""Compare any number of candidates against the same baselines in one table: the seed plan's
loop (Phase 5 curated vs Phase 5 top-100 vs Phase 5 + augmentation …).

    molting report --persona DIR \\
        --results curated=reports/a/results.json --results top100=reports/b/results.json

Each results.json is a gate run; all must share the prompts and the baselines' replies (the same
baseline, generated the same way), which is checked. Every model is re-scored with the
persona's current scorer; each candidate gets its criteria and its paired intervals against
every baseline. Besides candidates.md, candidates.html shows all of them as columns of one
prompt × model matrix (molting.gate.html).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tabulate import tabulate

from molting.errors import EvalError
from molting.gate.criteria import load_criteria, model_checks, verdict
from molting.gate.html import render_html
from molting.gate.records import (
    CANDIDATE,
    EvalResults,
    check_persona,
    load_results,
    prompts_hash,
    replies_hash,
)
from molting.gate.run import WEAK_VOICE, score_all, score_controls
from molting.io import OutputSet
from molting.metrics import Scorer
from molting.metrics.scorer import SCORER_VERSION
from molting.persona import load_persona


def compare_candidates(
    persona_dir: str,
    named: dict[str, str],
    report_dir: str | Path,
    criteria_path: str | None = None,
) -> tuple[Path, str]:
    persona = load_persona(persona_dir)
    crit = load_criteria(persona.criteria_path, criteria_path)
    runs = {name: load_results(path, crit) for name, path in named.items()}
    for name, r in runs.items():
        check_persona(r, persona, named[name])
    first_name, first = next(iter(runs.items()))
    baselines = first.baselines()
    for name, r in runs.items():
        if prompts_hash(r.prompts) != prompts_hash(first.prompts):
            raise EvalError(
                f"{named[name]}: other prompts than {named[first_name]}; compare runs on one "
                "prompt set."
            )
        for b in baselines:
            if b not in r.models or replies_hash(r.replies(b)) != replies_hash(first.replies(b)):
                raise EvalError(
                    f"{named[name]}: baseline '{b}' differs from {named[first_name]}'s; compare "
                    "runs against the same baselines (same model, same generation settings)."
                )
    clash = [n for n in named if n in baselines]
    if clash:
        raise EvalError(
            f"--results {clash[0]}=…: '{clash[0]}' is a baseline's name; give the candidate "
            "another name."
        )
    merged = _merged(runs, baselines, persona.languages, crit, persona.name, named)
    scorer = Scorer.load(persona)
    score_all(merged, scorer)
    merged.controls = score_controls(scorer, persona, merged.prompts)
    if weak := scorer.voice_not_told_apart():
        merged.facts[WEAK_VOICE] = weak
    text = _table(merged, named)
    out = Path(report_dir) / "candidates.md"
    with OutputSet(inputs=list(named.values())) as o:
        o.add(out, text, "comparison")
        o.add(out.with_suffix(".html"), render_html(merged), "page")
    return out, text


def _merged(
    runs: dict[str, EvalResults],
    baselines: list[str],
    languages: tuple[str, ...],
    crit,
    persona: str,
    named: dict[str, str],
) -> EvalResults:
    """One EvalResults holding the shared baselines and every run's candidate under its name."""
    first = next(iter(runs.values()))
    gens = {b: first.generations[b] for b in baselines}
    gens |= {n: [replace(g, model=n) for g in r.generations[CANDIDATE]] for n, r in runs.items()}
    models = {b: (first.facts.get("models") or {}).get(b) for b in baselines}
    models |= {n: (r.facts.get("models") or {}).get(CANDIDATE) for n, r in runs.items()}
    facts = {
        k: v
        for k, v in first.facts.items()
        if k
        not in (
            "models",
            "wall_seconds",
            "cache_hits",
            "cache_misses",
            "tokens_generated",
            "generation_seconds",
        )
    }
    facts |= {
        "models": {k: v for k, v in models.items() if v},
        "persona": persona,
        "rescored_by": "molting report",
        "results_files": named,
        "scorer_version": SCORER_VERSION,
    }
    return EvalResults(
        prompts=first.prompts,
        models=[*baselines, *runs],
        generations=gens,
        criteria=crit,
        languages=languages,
        facts=facts,
        candidates=tuple(runs),
    )


def _table(merged: EvalResults, named: dict[str, str]) -> str:
    crit, langs, baselines = merged.criteria, merged.prompt_langs(), merged.baselines()
    rows, verdicts, cs = [], [], []
    for name in merged.candidates:
        cs = model_checks(crit, merged.scores[name], langs)
        deltas = {c.baseline: c.personality for c in merged.comparisons if c.candidate == name}
        rows.append(
            [
                name,
                *[c.shown.split(" [")[0] + (" ✅" if c.passed else " ❌") for c in cs],
                *[
                    f"{deltas[b].estimate:+.2f} [{deltas[b].low:+.2f}, {deltas[b].high:+.2f}]"
                    for b in baselines
                ],
            ]
        )
        verdicts.append(f"- `{name}` ({named[name]}): {verdict(merged.checks(name))}")
    headers = [
        "Candidate",
        *[f"{c.metric} ({c.target})" for c in cs],
        *[f"Δ personality vs {b} (95% CI)" for b in baselines],
    ]
    base_rows = [
        [
            b,
            *[c.shown.split(" [")[0] for c in model_checks(crit, merged.scores[b], langs)],
            *["–"] * len(baselines),
        ]
        for b in baselines
    ]
    return "\n".join(
        [
            f"# Candidates compared: {merged.facts['persona']}",
            "",
            f"{len(merged.candidates)} candidates on the same {len(merged.prompts)} held-out "
            f"prompts and the same baselines ({', '.join(baselines)}), re-scored with the "
            "persona's scorer. Paired bootstrap intervals per baseline. `candidates.html` beside "
            "this file shows every reply of every model, side by side.",
            "",
            tabulate(rows + base_rows, headers=headers, tablefmt="github"),
            "",
            *verdicts,
            "",
            "_Generated by `molting report --results NAME=… --results NAME=…`; do not edit by "
            "hand._",
            "",
        ]
    )
