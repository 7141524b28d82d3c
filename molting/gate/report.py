"""Render the gate's reports: comparison.md (tabulate), report.html (molting.gate.html),
results.json and a PNG chart. Render only: every number comes from EvalResults through one view
(molting.gate.view), so the Markdown, the chart and the page never disagree.

Verdict first, with the lowest-scoring candidate reply and why; then the criteria table (metric |
target | each baseline | candidate | Δ with 95% CI | pass/fail), comparisons, the self-check
controls, a per-language table, the lowest-scoring and most regressed replies and samples side by
side — short table rows, each with its full prompt and replies in a collapsible block below
(fenced, so a reply's Markdown or HTML stays text) — and the run facts.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

from tabulate import tabulate

from molting.gate.html import render_html
from molting.gate.records import CANDIDATE, EvalResults, results_to_json
from molting.gate.view import LANG_NAMES, ReportView, Row, build_view, colours
from molting.io import OutputSet, json_text
from molting.metrics import aggregate
from molting.metrics.stats import paired_bootstrap
from molting.text.markdown import cell

SAMPLES = 6  # replies side by side, evenly spread over the prompts
WORST = 5  # lowest-scoring and most regressed replies listed


def _pass(ok: bool) -> str:
    return "✅ pass" if ok else "❌ fail"


def _criteria_table(results: EvalResults, v: ReportView) -> str:
    c = v.candidates[0]
    rows = [
        [
            r.metric,
            r.target,
            *[r.values[b] for b in v.baselines],
            r.values[c],
            r.deltas[c],
            _pass(r.passed[c]),
        ]
        for r in v.criteria
    ]
    table = tabulate(
        rows,
        headers=["Metric", "Target", *v.baselines, c, "Δ candidate − baseline (95% CI)", "Result"],
        tablefmt="github",
    )
    skipped = [lg for lg in results.languages if lg not in results.prompt_langs()]
    if skipped:
        table += (
            f"\n\nSkipped: no prompts in {', '.join(LANG_NAMES.get(lg, lg) for lg in skipped)}."
        )
    return table


def _comparison_table(v: ReportView) -> str:
    rows = [[ch.metric, ch.target, ch.shown, _pass(ch.passed)] for _, ch in v.comparisons]
    if not rows:
        return "No baseline."
    return tabulate(rows, headers=["Comparison", "Target", "Measured", "Result"], tablefmt="github")


def _controls_table(v: ReportView) -> str:
    if not v.controls:
        return "No controls were scored."
    rows = [[c["kind"], c["expected"], c["personality"], c["failed"], c["ok"]] for c in v.controls]
    return (
        "The eval set's own references and negatives, scored in this run: a gate that cannot "
        "tell them apart refuses to judge a model. The impostor control is other voices' "
        "replies the style model never trained on, each to its own prompt and scored for voice "
        "alone (off the persona's prompts they would be cut as off topic whoever wrote them).\n\n"
        + tabulate(
            rows,
            headers=["Control", "Expected", "Personality", "Criteria failed", "As expected"],
            tablefmt="github",
        )
    )


def _language_table(results: EvalResults) -> str:
    rows = []
    for m in results.models:
        summ = aggregate(results.scores[m])
        for lang in results.prompt_langs():
            s = summ[lang]
            rows.append(
                [
                    m,
                    LANG_NAMES.get(lang, lang),
                    s.n,
                    f"{s.personality.mean:.2f} ± "
                    f"{(s.personality.high - s.personality.low) / 2:.2f}",
                    f"{s.agent_rate.rate:.1%}",
                    f"{s.direct_rate.rate:.1%}",
                    f"{s.lang_match_rate.rate:.1%}",
                    f"{s.fluency.mean:.2f}" if s.fluency else "–",
                ]
            )
    return tabulate(
        rows,
        headers=[
            "Model",
            "Lang",
            "n",
            "Personality (95% CI)",
            "Agent rate",
            "Direct",
            "Right language",
            "Fluency",
        ],
        tablefmt="github",
    )


def _fenced(text: str) -> str:
    """A fenced block that holds any text as text: the fence is longer than any backtick run
    in it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _full(row: Row, models: list[str]) -> str:
    """A collapsible block with the full prompt and every model's full reply, score and why."""
    scores = ", ".join(f"{m} {row.cells[m].score:.2f}" for m in models)

    def esc(t: str) -> str:
        return html.escape(t, quote=False)

    parts = [
        f"<details><summary>{esc(row.id)} — {esc(cell(row.prompt, 70))} ({esc(scores)})</summary>",
        "",
        f"**Prompt** ({LANG_NAMES.get(row.lang, row.lang)}, {row.category})",
        "",
        _fenced(row.prompt),
        "",
    ]
    for m in models:
        c = row.cells[m]
        parts += [f"**{m}** — {c.score:.2f} · {esc(cell(c.why, 400))}", "", _fenced(c.reply), ""]
    parts += ["</details>", ""]
    return "\n".join(parts)


def _lowest(v: ReportView, k: int = WORST) -> str:
    c = v.candidates[0]
    order = sorted(v.rows, key=lambda r: (r.cells[c].score, -len(r.cells[c].gates), r.index))[:k]
    table = tabulate(
        [
            [
                r.id,
                LANG_NAMES.get(r.lang, r.lang),
                cell(r.prompt, 50),
                f"{r.cells[c].score:.2f}",
                cell(r.cells[c].why, 140),
            ]
            for r in order
        ],
        headers=["Prompt id", "Lang", "Prompt", f"{c} score", "Why"],
        tablefmt="github",
        disable_numparse=True,
    )
    return table + "\n\n" + "\n".join(_full(r, v.models) for r in order)


def _worst(v: ReportView, k: int = WORST) -> str:
    if not v.baselines:
        return "No baseline to compare with."
    c, base = v.candidates[0], v.baselines[0]
    order = sorted(v.rows, key=lambda r: (r.cells[c].deltas[base], r.index))[:k]
    table = tabulate(
        [
            [
                r.id,
                cell(r.prompt, 50),
                f"{r.cells[base].score:.2f}",
                f"{r.cells[c].score:.2f}",
                f"{r.cells[c].deltas[base]:+.2f}",
                cell(r.cells[c].why, 120),
            ]
            for r in order
        ],
        headers=["Prompt id", "Prompt", f"{base} score", f"{c} score", "Δ", f"Why {c} scored so"],
        tablefmt="github",
        disable_numparse=True,
    )
    return table + "\n\n" + "\n".join(_full(r, v.models) for r in order)


def _samples(v: ReportView, k: int = SAMPLES) -> str:
    step = max(1, len(v.rows) // k)
    rows = v.rows[::step][:k]
    table = tabulate(
        [
            [
                r.id,
                LANG_NAMES.get(r.lang, r.lang),
                cell(r.prompt, 60),
                *[f"{r.cells[m].score:.2f}" for m in v.models],
            ]
            for r in rows
        ],
        headers=["Prompt id", "Lang", "Prompt", *[f"{m} score" for m in v.models]],
        tablefmt="github",
        disable_numparse=True,
    )
    return table + "\n\n" + "\n".join(_full(r, v.models) for r in rows)


def _judge_table(results: EvalResults) -> str:
    """Mean LLM-judge score per model, with the paired Δ of the candidate; not asserted."""
    cand = results.judge[CANDIDATE]
    rows = []
    for m in results.models:
        vals = results.judge[m]
        delta = "–"
        if m != CANDIDATE:
            iv = paired_bootstrap(cand, vals, confidence=results.criteria.comparison_confidence)
            delta = f"{iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]"
        rows.append([m, f"{sum(vals) / len(vals):.2f}", delta])
    table = tabulate(
        rows,
        headers=["Model", "Judge score (0–10)", "Δ candidate − model (95% CI)"],
        tablefmt="github",
    )
    return (
        f"Judge `{results.criteria.judge}` (rubric from the persona card, "
        "probability-weighted score). "
        f"Informational only: the criteria above use the calibrated offline scorer.\n\n{table}"
    )


def _facts(v: ReportView) -> str:
    parts = []
    for section, rows in v.facts.items():
        parts += [
            f"**{section}**",
            "",
            tabulate([[k, cell(val, 200)] for k, val in rows], headers=["", ""], tablefmt="github"),
            "",
        ]
    if v.libraries:
        parts += [
            "**Libraries**",
            "",
            tabulate(
                [[k, val or "–"] for k, val in v.libraries],
                headers=["Library", "Version"],
                tablefmt="github",
            ),
            "",
        ]
    return "\n".join(parts).strip()


def render(results: EvalResults) -> str:
    v = build_view(results)
    c = v.candidates[0]
    low = v.lowest[0]
    parts = [
        f"# {v.title}",
        "",
        v.verdicts[c],
        "",
        *([f"**{v.warning}**", ""] if v.warning else []),
        f"Models: {', '.join(f'`{m}`' for m in v.models)} on {v.n_prompts} held-out prompts "
        f"({v.counts}). Thresholds from the criteria file; intervals are paired bootstrap (Δ) or "
        "Wilson (rates). `report.html` beside this file shows every reply in full, with filters "
        "and each score's parts.",
        "",
        f"Lowest-scoring {c} reply: **{low.row.id}** ({low.cell.score:.2f}) — "
        f"{cell(low.cell.why, 300)}. "
        "Its full text is under *Lowest-scoring replies* below.",
        "",
        "![Criteria per model: fixed scales, targets dashed, 95% intervals as whiskers]"
        "(comparison.png)",
        "",
        "## Success criteria",
        "",
        _criteria_table(results, v),
        "",
        "## Candidate vs each baseline",
        "",
        _comparison_table(v),
        "",
        "## Self-check controls",
        "",
        _controls_table(v),
        "",
        "## Per language",
        "",
        _language_table(results),
        "",
        f"## Lowest-scoring {c} replies",
        "",
        _lowest(v),
        "## Worst regressions (candidate − first baseline)",
        "",
        _worst(v),
        "## Sample replies side by side",
        "",
        _samples(v),
        *(["## LLM judge (optional)", "", _judge_table(results), ""] if results.judge else []),
        "## Run facts",
        "",
        _facts(v),
        "",
        "_Generated by the molting gate (`pytest --persona …`) or `molting report`; "
        "do not edit by hand._",
        "",
    ]
    return "\n".join(parts)


def chart_png(results: EvalResults) -> bytes:
    """One panel per criterion on a fixed scale (0–10 or 0–100 %), the target as a dashed line,
    95% intervals as whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = build_view(results)
    colour = colours(v.models, v.candidates)
    cols = min(3, len(v.series))
    nrows = -(-len(v.series) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.9 * nrows), squeeze=False)
    for ax in axes.flat[len(v.series) :]:
        ax.axis("off")
    for ax, s in zip(axes.flat, v.series):
        xs = range(len(s.bars))
        vals = [b.value or 0.0 for b in s.bars]
        err = [
            [
                max(0.0, (b.value or 0) - (b.low if b.low is not None else b.value or 0))
                for b in s.bars
            ],
            [
                max(0.0, (b.high if b.high is not None else b.value or 0) - (b.value or 0))
                for b in s.bars
            ],
        ]
        ax.bar(
            xs, vals, color=[colour[b.model] for b in s.bars], yerr=err, capsize=4, ecolor="#333333"
        )
        ax.axhline(s.target, color="#c0392b", linestyle="--", linewidth=1.2)
        ax.text(
            len(s.bars) - 0.5,
            s.target,
            f"target {s.better} {s.target:g}{s.unit}",
            color="#c0392b",
            fontsize=7,
            ha="right",
            va="bottom",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.85},
        )
        for x, b in zip(xs, s.bars):
            label = (
                "–" if b.value is None else f"{b.value:.1f}{s.unit}" if s.unit else f"{b.value:.2f}"
            )
            top = max(b.value or 0.0, b.high or 0.0) + 0.02 * s.scale
            inside = top > 0.9 * s.scale
            ax.text(
                x,
                (b.value or 0.0) - 0.03 * s.scale if inside else top,
                label,
                ha="center",
                va="top" if inside else "bottom",
                fontsize=7,
                color="white" if inside else "#333333",
            )
        ax.set_ylim(0, s.scale)
        ax.set_xticks(list(xs), [b.model for b in s.bars], fontsize=8, rotation=20)
        ax.set_title(s.title, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", color="#eeeeee")
        ax.set_axisbelow(True)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def write_reports(results: EvalResults, report_dir: str | Path) -> list[Path]:
    """comparison.md, report.html, results.json and comparison.png — all four or none."""
    d = Path(report_dir)
    with OutputSet() as out:
        out.add(d / "comparison.md", render(results), "report")
        out.add(d / "report.html", render_html(results), "page")
        out.add(d / "results.json", json_text(results_to_json(results), indent=1), "results")
        out.add(d / "comparison.png", chart_png(results), "chart")
    return [d / "comparison.md", d / "report.html", d / "results.json", d / "comparison.png"]
