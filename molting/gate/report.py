"""Render the gate's reports: comparison.md (tabulate), results.json and a PNG chart. Render only:
every number comes from EvalResults and its checks (molting.gate.criteria).

Verdict first; then the criteria table (metric | target | each baseline | candidate | Δ with
95% CI | pass/fail), comparisons, the self-check controls, a per-language table, the worst
regressions and sample replies side by side (cells sanitised: tabulate escapes neither `|` nor
newlines), and the run facts.
"""

from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from molting.gate.criteria import Check, verdict
from molting.gate.records import CANDIDATE, EvalResults, results_to_json
from molting.io import OutputSet, json_text
from molting.metrics import aggregate
from molting.text.markdown import cell

LANG_NAMES = {"en": "EN", "pt": "PT-BR"}


def _pass(ok: bool) -> str:
    return "✅ pass" if ok else "❌ fail"


def _criteria_table(results: EvalResults, cs: list[Check]) -> str:
    bases = results.baselines()
    langs = results.prompt_langs()
    per_model = {m: {c.name: c.shown.split(" [")[0] for c in results.checks(m)} for m in bases}
    rows = []
    for ch in cs:
        if ch.name.startswith(("beats_", "no_agent_regression_")):
            continue
        deltas = []
        for comp in results.comparisons:
            iv = comp.personality if ch.name == "personality" else comp.fluency if ch.name == "pt_fluency" else None
            if iv is not None:
                deltas.append(f"{comp.baseline}: {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]")
        rows.append([ch.metric, ch.target, *[per_model[b].get(ch.name, "–") for b in bases], ch.shown,
                     "; ".join(deltas) or "–", _pass(ch.passed)])
    skipped = [lg for lg in results.languages if lg not in langs]
    table = tabulate(rows, headers=["Metric", "Target", *bases, CANDIDATE, "Δ candidate − baseline (95% CI)", "Result"],
                     tablefmt="github")
    if skipped:
        table += f"\n\nSkipped: no prompts in {', '.join(LANG_NAMES.get(lg, lg) for lg in skipped)}."
    return table


def _comparison_table(cs: list[Check]) -> str:
    rows = [[ch.metric, ch.target, ch.shown, _pass(ch.passed)] for ch in cs
            if ch.name.startswith(("beats_", "no_agent_regression_"))]
    if not rows:
        return "No baseline."
    return tabulate(rows, headers=["Comparison", "Target", "Measured", "Result"], tablefmt="github")


def _controls_table(results: EvalResults) -> str:
    if not results.controls:
        return "No controls were scored."
    from molting.gate.criteria import model_checks

    rows = []
    expect = {"reference": "pass every criterion", "generic": "fail personality", "agent": "fail personality",
              "impostor": "fail personality"}
    for kind, scores in results.controls.items():
        cs = model_checks(results.criteria, scores, results.prompt_langs())
        pers = next(c for c in cs if c.name == "personality")
        ok = all(c.passed for c in cs) if kind == "reference" else not pers.passed
        failed = [c.metric for c in cs if not c.passed]
        rows.append([kind, expect.get(kind, ""), pers.shown, ", ".join(failed) or "none", "✅" if ok else "❌"])
    return ("The eval set's own references and negatives, scored in this run: a gate that cannot tell them apart "
            "refuses to judge a model.\n\n" + tabulate(rows, headers=["Control", "Expected", "Personality", "Criteria failed",
                                                                       "As expected"], tablefmt="github"))


def _language_table(results: EvalResults) -> str:
    rows = []
    for m in results.models:
        summ = aggregate(results.scores[m])
        for lang in results.prompt_langs():
            s = summ[lang]
            rows.append([m, LANG_NAMES.get(lang, lang), s.n,
                         f"{s.personality.mean:.2f} ± {(s.personality.high - s.personality.low) / 2:.2f}",
                         f"{s.agent_rate.rate:.1%}", f"{s.direct_rate.rate:.1%}", f"{s.lang_match_rate.rate:.1%}",
                         f"{s.fluency.mean:.2f}" if s.fluency else "–"])
    return tabulate(rows, headers=["Model", "Lang", "n", "Personality (95% CI)", "Agent rate", "Direct",
                                   "Right language", "Fluency"], tablefmt="github")


def _worst(results: EvalResults, k: int = 5) -> str:
    if not results.comparisons:
        return "No baseline to compare with."
    base = results.comparisons[0].baseline
    cand, other = results.scores[CANDIDATE], results.scores[base]
    order = sorted(range(len(cand)), key=lambda i: (cand[i].personality - other[i].personality, i))[:k]
    rows = [[results.prompts[i].id, cell(results.prompts[i].prompt, 60), cell(results.replies(base)[i], 110),
             f"{other[i].personality:.1f}", cell(results.replies(CANDIDATE)[i], 110), f"{cand[i].personality:.1f}",
             ", ".join(cand[i].gates) or "–"] for i in order]
    return tabulate(rows, headers=["Prompt id", "Prompt", base, "score", CANDIDATE, "score", "Candidate gates"],
                    tablefmt="github")


def _samples(results: EvalResults, k: int = 6) -> str:
    step = max(1, len(results.prompts) // k)
    idx = list(range(0, len(results.prompts), step))[:k]
    rows = [[results.prompts[i].id, cell(results.prompts[i].prompt, 60),
             *[cell(results.replies(m)[i], 110) for m in results.models]] for i in idx]
    return tabulate(rows, headers=["Prompt id", "Prompt", *results.models], tablefmt="github")


def _judge_table(results: EvalResults) -> str:
    """Mean LLM-judge score per model, with the paired Δ of the candidate; not asserted."""
    from molting.metrics.stats import paired_bootstrap

    cand = results.judge[CANDIDATE]
    rows = []
    for m in results.models:
        vals = results.judge[m]
        delta = "–"
        if m != CANDIDATE:
            iv = paired_bootstrap(cand, vals, confidence=results.criteria.comparison_confidence)
            delta = f"{iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]"
        rows.append([m, f"{sum(vals) / len(vals):.2f}", delta])
    table = tabulate(rows, headers=["Model", "Judge score (0–10)", "Δ candidate − model (95% CI)"], tablefmt="github")
    return (f"Judge `{results.criteria.judge}` (rubric from the persona card, probability-weighted score). "
            f"Informational only: the criteria above use the calibrated offline scorer.\n\n{table}")


def _facts(results: EvalResults) -> str:
    f = results.facts
    rows = [[k, cell(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v, 160)]
            for k, v in f.items() if k != "libraries"]
    rows.append(["libraries", cell(", ".join(f"{k} {v}" for k, v in f.get("libraries", {}).items()), 200)])
    return tabulate(rows, headers=["Fact", "Value"], tablefmt="github")


def render(results: EvalResults) -> str:
    cs = results.checks()
    counts = ", ".join(f"{sum(p.lang == lg for p in results.prompts)} {LANG_NAMES.get(lg, lg)}"
                       for lg in results.prompt_langs())
    persona = results.facts.get("persona", "")
    parts = [
        f"# Persona gate{': ' + persona if persona else ''} — baseline vs candidate", "", verdict(cs), "",
        f"Models: {', '.join(f'`{m}`' for m in results.models)} on {len(results.prompts)} held-out prompts ({counts}). "
        "Thresholds from the criteria file; intervals are paired bootstrap (Δ) or Wilson (rates).", "",
        "## Success criteria", "", _criteria_table(results, cs), "",
        "## Candidate vs each baseline", "", _comparison_table(cs), "",
        "## Self-check controls", "", _controls_table(results), "",
        "## Per language", "", _language_table(results), "",
        "## Worst regressions (candidate − first baseline)", "", _worst(results), "",
        "## Sample replies side by side", "", _samples(results), "",
        *(["## LLM judge (optional)", "", _judge_table(results), ""] if results.judge else []),
        "## Run facts", "", _facts(results), "",
        "_Generated by the molting gate (`pytest --persona …`) or `molting report`; do not edit by hand._", "",
    ]
    return "\n".join(parts)


def chart_png(results: EvalResults) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = results.models
    summ = {m: aggregate(results.scores[m]) for m in names}
    metrics = {
        "Personality (0–10)": [summ[m]["all"].personality.mean for m in names],
        "Agent rate (%)": [100 * summ[m]["all"].agent_rate.rate for m in names],
        "Direct (%)": [100 * summ[m]["all"].direct_rate.rate for m in names],
    }
    if "pt" in results.prompt_langs():
        metrics["PT fluency (0–10)"] = [summ[m]["pt"].fluency.mean if summ[m]["pt"].fluency else 0 for m in names]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2))
    for ax, (title, vals) in zip(axes, metrics.items()):
        ax.bar(names, vals, color=["#999999"] * (len(names) - 1) + ["#2a7ab9"])
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_reports(results: EvalResults, report_dir: str | Path) -> list[Path]:
    """comparison.md, results.json and comparison.png — all three or none."""
    d = Path(report_dir)
    with OutputSet() as out:
        out.add(d / "comparison.md", render(results), "report")
        out.add(d / "results.json", json_text(results_to_json(results), indent=1), "results")
        out.add(d / "comparison.png", chart_png(results), "chart")
    return [d / "comparison.md", d / "results.json", d / "comparison.png"]
