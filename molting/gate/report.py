"""Write the gate's reports: comparison.md (tabulate), results.json, and a PNG chart.

Verdict first; then the criteria table (metric | target | each baseline | candidate | Δ with
95% CI | pass/fail), per-language table, worst regressions and sample replies side by side
(cells sanitised: tabulate escapes neither `|` nor newlines), and the run facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from molting.curate.report import cell
from molting.data import write_text_atomic
from molting.gate.run import CANDIDATE, EvalResults, results_to_json
from molting.metrics import aggregate


@dataclass(frozen=True)
class Check:
    name: str  # criterion id, also the test's parameter
    metric: str
    target: str
    value: float | None
    passed: bool
    shown: str  # how the candidate's value is printed


def checks(results: EvalResults) -> list[Check]:
    """Every success criterion evaluated on the candidate (the tests assert exactly these)."""
    c = results.criteria
    summ = aggregate(results.scores[CANDIDATE])
    out = [Check("personality", "Personality (0–10)", f"≥ {c.personality_min}", summ["all"].personality.mean,
                 summ["all"].personality.mean >= c.personality_min, f"{summ['all'].personality.mean:.2f}")]
    for lang in ("en", "pt"):
        if lang in summ:
            r = summ[lang].agent_rate
            out.append(Check(f"agent_rate_{lang}", f"Agent-phrase rate ({lang.upper()})", f"≤ {c.agent_rate_max:.0%}",
                             r.rate, r.rate <= c.agent_rate_max, f"{r.rate:.1%} [{r.low:.0%}, {r.high:.0%}]"))
    d = summ["all"].direct_rate
    out.append(Check("directness", "Directness (answer first)", f"≥ {c.directness_min:.0%}", d.rate,
                     d.rate >= c.directness_min, f"{d.rate:.1%}"))
    if "pt" in summ:
        m = summ["pt"].lang_match_rate
        out.append(Check("pt_language", "PT prompts answered in PT", f"≥ {c.pt_language_match_min:.0%}", m.rate,
                         m.rate >= c.pt_language_match_min, f"{m.rate:.1%}"))
        f = summ["pt"].fluency
        out.append(Check("pt_fluency", "PT-BR fluency (0–10)", f"≥ {c.pt_fluency_min}", f.mean if f else None,
                         bool(f and f.mean >= c.pt_fluency_min), f"{f.mean:.2f}" if f else "–"))
    for comp in results.comparisons:
        iv = comp.personality
        out.append(Check(f"beats_{comp.baseline}", f"Personality Δ vs {comp.baseline} (paired 95% CI)", "CI above 0",
                         iv.low, iv.low > 0, f"{iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]"))
        out.append(Check(f"no_agent_regression_{comp.baseline}", f"Agent phrases vs {comp.baseline} (McNemar)",
                         f"p ≥ {c.agent_regression_alpha}", comp.agent.p_value, comp.agent.p_value >= c.agent_regression_alpha,
                         f"+{comp.agent.candidate_only}/−{comp.agent.baseline_only}, p={comp.agent.p_value:.3f}"))
    return out


def _model_value(results: EvalResults, model: str, key: str) -> str:
    summ = aggregate(results.scores[model])
    if key == "personality":
        return f"{summ['all'].personality.mean:.2f}"
    if key.startswith("agent_rate_"):
        lang = key.rsplit("_", 1)[1]
        return f"{summ[lang].agent_rate.rate:.1%}" if lang in summ else "–"
    if key == "directness":
        return f"{summ['all'].direct_rate.rate:.1%}"
    if key == "pt_language":
        return f"{summ['pt'].lang_match_rate.rate:.1%}" if "pt" in summ else "–"
    if key == "pt_fluency":
        f = summ["pt"].fluency if "pt" in summ else None
        return f"{f.mean:.2f}" if f else "–"
    return ""


def _criteria_table(results: EvalResults, cs: list[Check]) -> str:
    bases = results.baselines()
    rows = []
    for ch in cs:
        if ch.name.startswith(("beats_", "no_agent_regression_")):
            continue
        deltas = []
        for comp in results.comparisons:
            if ch.name == "personality":
                iv = comp.personality
                deltas.append(f"{comp.baseline}: {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]")
            elif ch.name == "pt_fluency" and comp.fluency:
                iv = comp.fluency
                deltas.append(f"{comp.baseline}: {iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]")
        rows.append([ch.metric, ch.target, *[_model_value(results, b, ch.name) for b in bases], ch.shown,
                     "; ".join(deltas) or "–", "✅ pass" if ch.passed else "❌ fail"])
    headers = ["Metric", "Target", *bases, CANDIDATE, "Δ candidate − baseline (95% CI)", "Result"]
    return tabulate(rows, headers=headers, tablefmt="github")


def _comparison_table(cs: list[Check]) -> str:
    rows = [[ch.metric, ch.target, ch.shown, "✅ pass" if ch.passed else "❌ fail"]
            for ch in cs if ch.name.startswith(("beats_", "no_agent_regression_"))]
    return tabulate(rows, headers=["Comparison", "Target", "Measured", "Result"], tablefmt="github")


def _language_table(results: EvalResults) -> str:
    rows = []
    for m in results.models:
        summ = aggregate(results.scores[m])
        for lang in ("en", "pt"):
            if lang not in summ:
                continue
            s = summ[lang]
            rows.append([m, lang.upper(), s.n, f"{s.personality.mean:.2f} ± {(s.personality.high - s.personality.low) / 2:.2f}",
                         f"{s.agent_rate.rate:.1%}", f"{s.direct_rate.rate:.1%}", f"{s.lang_match_rate.rate:.1%}",
                         f"{s.fluency.mean:.2f}" if s.fluency else "–"])
    return tabulate(rows, headers=["Model", "Lang", "n", "Personality (95% CI)", "Agent rate", "Direct", "Right language", "Fluency"],
                    tablefmt="github")


def _worst(results: EvalResults, k: int = 5) -> str:
    if not results.comparisons:
        return "No baseline to compare with."
    base = results.comparisons[0].baseline
    cand, other = results.scores[CANDIDATE], results.scores[base]
    order = sorted(range(len(cand)), key=lambda i: (cand[i].personality - other[i].personality, i))[:k]
    rows = [[results.prompts[i]["id"], cell(results.prompts[i]["prompt"], 60), cell(results.replies(base)[i], 110),
             f"{other[i].personality:.1f}", cell(results.replies(CANDIDATE)[i], 110), f"{cand[i].personality:.1f}",
             ", ".join(cand[i].gates) or "–"] for i in order]
    return tabulate(rows, headers=["Prompt id", "Prompt", base, "score", CANDIDATE, "score", "Candidate gates"], tablefmt="github")


def _samples(results: EvalResults, k: int = 6) -> str:
    step = max(1, len(results.prompts) // k)
    idx = list(range(0, len(results.prompts), step))[:k]
    rows = [[results.prompts[i]["id"], cell(results.prompts[i]["prompt"], 60),
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
    return (f"Judge `{results.criteria.judge}` (rubric with one example per level, probability-weighted "
            f"score). Informational only: the criteria above use the calibrated offline scorer.\n\n{table}")


def _facts(results: EvalResults) -> str:
    f = results.facts
    rows = [[k, cell(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v, 160)]
            for k, v in f.items() if k != "libraries"]
    rows.append(["libraries", cell(", ".join(f"{k} {v}" for k, v in f.get("libraries", {}).items()), 200)])
    return tabulate(rows, headers=["Fact", "Value"], tablefmt="github")


def verdict(cs: list[Check]) -> str:
    failed = [c.metric for c in cs if not c.passed]
    if not failed:
        return f"**PASS** — the candidate meets all {len(cs)} criteria."
    return f"**FAIL** — {len(failed)} of {len(cs)} criteria not met: " + "; ".join(failed) + "."


def render(results: EvalResults) -> str:
    cs = checks(results)
    parts = [
        "# Persona gate: baseline vs candidate", "", verdict(cs), "",
        f"Models: {', '.join(f'`{m}`' for m in results.models)} on {len(results.prompts)} held-out prompts "
        f"({sum(p['lang'] == 'en' for p in results.prompts)} EN, {sum(p['lang'] == 'pt' for p in results.prompts)} PT-BR). "
        "Thresholds from the criteria file; intervals are paired bootstrap (Δ) or Wilson (rates).", "",
        "## Success criteria", "", _criteria_table(results, cs), "",
        "## Candidate vs each baseline", "", _comparison_table(cs), "",
        "## Per language", "", _language_table(results), "",
        "## Worst regressions (candidate − first baseline)", "", _worst(results), "",
        "## Sample replies side by side", "", _samples(results), "",
        *(["## LLM judge (optional)", "", _judge_table(results), ""] if results.judge else []),
        "## Run facts", "", _facts(results), "",
        "_Generated by `pytest evals/` / `molting report`; do not edit by hand._", "",
    ]
    return "\n".join(parts)


def chart(results: EvalResults, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = results.models
    summ = {m: aggregate(results.scores[m]) for m in names}
    metrics = {
        "Personality (0–10)": [summ[m]["all"].personality.mean for m in names],
        "PT fluency (0–10)": [summ[m]["pt"].fluency.mean if "pt" in summ[m] and summ[m]["pt"].fluency else 0 for m in names],
        "Agent rate (%)": [100 * summ[m]["all"].agent_rate.rate for m in names],
        "Direct (%)": [100 * summ[m]["all"].direct_rate.rate for m in names],
    }
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2))
    for ax, (title, vals) in zip(axes, metrics.items()):
        ax.bar(names, vals, color=["#999999"] * (len(names) - 1) + ["#2a7ab9"])
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def write_reports(results: EvalResults, report_dir: str | Path) -> list[Path]:
    d = Path(report_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = [write_text_atomic(d / "comparison.md", render(results)),
             write_text_atomic(d / "results.json", json.dumps(results_to_json(results), ensure_ascii=False, indent=1,
                                                              default=_json_default) + "\n")]
    chart(results, d / "comparison.png")
    return [*paths, d / "comparison.png"]


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
