"""Render CURATION_REPORT.md (tabulate) and its stats JSON from curation counters.

No timestamps: the same input gives byte-identical reports, so they can be committed and diffed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tabulate import tabulate

from molting.text.markdown import cell
from molting.text.patterns import BY_ID, CATEGORIES, PATTERNS, PATTERNS_VERSION

LANG_NAMES = {"en": "English", "pt": "Portuguese (pt-BR)"}


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "–"


def _overview(s: dict[str, Any]) -> str:
    rows = [
        ["**Total examples**", s["total"], s["kept"], f"{s['change_pct']:+.1f}%"],
        [
            "**Agent patterns removed**",
            "-",
            s["removed_agent"],
            _pct(s["removed_agent"], s["total"]),
        ],
        [
            "**Exact duplicates removed**",
            "-",
            s["removed_duplicate"],
            _pct(s["removed_duplicate"], s["total"]),
        ],
        ["**Multi-turn kept**", "-", s["kept_multi_turn"], _pct(s["kept_multi_turn"], s["kept"])],
    ]
    return tabulate(rows, headers=["Metric", "Before", "After", "Change"], tablefmt="github")


def _by_language(s: dict[str, Any]) -> str:
    langs = sorted(set(s["removed_by_language"]) | set(s["kept_by_language"]))
    rows = [
        [
            LANG_NAMES.get(lang, lang),
            s["removed_by_language"].get(lang, 0),
            s["kept_by_language"].get(lang, 0),
            _pct(s["kept_by_language"].get(lang, 0), s["kept"]),
        ]
        for lang in langs
    ]
    return tabulate(
        rows, headers=["Language", "Removed", "Kept", "Share of kept"], tablefmt="github"
    )


def _by_pattern(s: dict[str, Any]) -> str:
    reasons, hits = s["removed_by_reason"], s["examples_hit_by_pattern"]
    ids = sorted(set(reasons) | set(hits), key=lambda i: (-reasons.get(i, 0), -hits.get(i, 0), i))
    rows = []
    for rank, pid in enumerate(ids, start=1):
        p = BY_ID.get(pid)
        rows.append(
            [
                rank,
                f"`{pid}`",
                p.lang if p else "–",
                p.category if p else "duplicate",
                cell(p.description if p else "exact duplicate after normalisation"),
                reasons.get(pid, 0),
                hits.get(pid, 0),
            ]
        )
    headers = [
        "#",
        "Pattern",
        "Lang",
        "Category",
        "Description",
        "Removed (first hit)",
        "Examples hit",
    ]
    return tabulate(rows, headers=headers, tablefmt="github")


def _by_category(s: dict[str, Any]) -> str:
    rows = [
        [cat, cell(CATEGORIES.get(cat, "exact duplicates")), n, _pct(n, s["removed"])]
        for cat, n in s["removed_by_category"].items()
    ]
    return tabulate(
        rows, headers=["Category", "What", "Removed", "Share of removed"], tablefmt="github"
    )


def _overlaps(s: dict[str, Any]) -> str:
    if not s["overlaps"]:
        return "No example was hit by more than one pattern."
    multi = sum(s["overlaps"].values())
    rows = [[cell(k, 120), n] for k, n in list(s["overlaps"].items())[:15]]
    table = tabulate(
        rows, headers=["Patterns hitting the same example", "Examples"], tablefmt="github"
    )
    return (
        f"{multi} removed examples were hit by more than one pattern (top combinations):\n\n{table}"
    )


def _samples(s: dict[str, Any]) -> str:
    rows = [
        [f"`{pid}`", cell(x["id"], 30), x["turn"], cell(x["match"], 100)]
        for pid, x in s["samples"].items()
    ]
    return tabulate(
        rows, headers=["Pattern", "Example id", "Turn", "Matched span"], tablefmt="github"
    )


def _pattern_list() -> str:
    rows = [
        [
            f"`{p.id}`",
            p.lang,
            p.category,
            cell(p.description),
            cell(p.positives[0], 60),
            cell(p.negatives[0], 60),
        ]
        for p in PATTERNS
    ]
    return tabulate(
        rows,
        headers=["Pattern", "Lang", "Category", "Description", "Caught", "Not caught"],
        tablefmt="github",
    )


def render_report(s: dict[str, Any], output: Path, rejected: Path) -> str:
    parts = [
        "# Curation report",
        "",
        f"Input `{s['input']}` (sha256 `{s['input_sha256'][:16]}…`) → curated `{output}`; every "
        f"removed example is in `{rejected}` with its turn, pattern id, matched span and language. "
        f"Patterns version `{PATTERNS_VERSION}`, {len(PATTERNS)} patterns "
        f"({sum(p.lang == 'en' for p in PATTERNS)} EN, {sum(p.lang == 'pt' for p in PATTERNS)} "
        "PT-BR). An example is removed when any assistant turn matches; its reason is the earliest "
        "match.",
        "",
        "## Curation impact",
        "",
        _overview(s),
        "",
        "## Removals and kept examples per language",
        "",
        _by_language(s),
        "",
        "## Removed per pattern (top patterns first)",
        "",
        _by_pattern(s),
        "",
        "## Removed per category",
        "",
        _by_category(s),
        "",
        "## Overlaps",
        "",
        _overlaps(s),
        "",
        "## One sample per pattern",
        "",
        _samples(s),
        "",
        "## The patterns",
        "",
        "Matched on NFKD, accent-stripped, case-folded text; preambles are anchored at the reply "
        "or a "
        'sentence start, so direct replies such as "Let me know if…" or "Vou ser sincero…" are '
        "kept.",
        "",
        _pattern_list(),
        "",
        "_Generated by `molting curate`; do not edit by hand._",
        "",
    ]
    return "\n".join(parts)
