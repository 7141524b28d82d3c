"""The gate's reports as a reader sees them: comparison.md, comparison.png and report.html
rendered from one EvalResults (synthetic scores here: no scorer, no model), escaped, complete,
self-contained. tests/test_report_browser.py opens the page in a real browser."""

from __future__ import annotations

import re

import pytest

from molting.gate.criteria import load_criteria
from molting.gate.html import render_html
from molting.gate.records import EvalResults, Generation
from molting.gate.report import chart_png, render, write_reports
from molting.gate.run import compare_all
from molting.gate.view import build_view, flatten
from molting.metrics import ReplyScores
from molting.persona import Prompt

HOSTILE = "<script>alert('pwned')</script> **not bold** | not a cell\n```\nnot a fence\n```"
LANGS = ("en", "pt")


def _score(pid: str, lang: str, value: float, gates: tuple[str, ...] = (), **parts) -> ReplyScores:
    base = {
        "style": 0.8,
        "base": 0.9,
        "anchored": value,
        "topical": 1.0 if "off_topic" not in gates else 0.1,
        "topical_similarity": 0.6,
        "topical_margin": 0.2 if "off_topic" not in gates else -0.05,
        "signatures": 0,
        "agent_hits": ["en.start_by"] if "agent_talk" in gates else [],
        "preamble": None,
        "degenerate": "loop" if "degenerate" in gates else None,
        "in_language": 1.0,
        "variety": 1.0,
        "fluency": {"lexical": 0.9, "syntax": 0.8} if lang == "pt" else None,
    }
    return ReplyScores(
        id=pid,
        lang=lang,
        personality=value,
        agent_like="agent_talk" in gates,
        direct=True,
        language=lang,
        lang_match=True,
        fluency=7.0 if lang == "pt" else None,
        br_markers=("br:voce",) if lang == "pt" else (),
        gates=gates,
        parts=base | parts,
    )


def synthetic_results(candidates: tuple[str, ...] = ("candidate",)) -> EvalResults:
    """Six prompts in two languages; a base, and candidates that are worse than it on two
    prompts; one reply is hostile text; one score carries a part the report has never seen."""
    prompts = [
        Prompt(
            id=f"ev-{lg}-{i}",
            lang=lg,
            prompt=f"Question {i} in {lg}?",
            reference=f"Answer {i}.",
            category="code" if i % 2 else "life",
        )
        for lg in LANGS
        for i in range(3)
    ]
    models = ["base", *candidates]
    gens, scores = {}, {}
    for k, m in enumerate(models):
        gens[m], scores[m] = [], []
        for i, p in enumerate(prompts):
            reply = (
                HOSTILE
                if (m == models[-1] and i == 0)
                else f"{m} says: the full reply to {p.id}. " * 8
            )
            gens[m].append(Generation(m, p.id, reply, 20, False))
            if m == "base":
                scores[m].append(_score(p.id, p.lang, 5.0))
            elif i == 0:
                scores[m].append(
                    _score(
                        p.id,
                        p.lang,
                        0.0,
                        ("off_topic", "degenerate"),
                        impostor={"voice": "other persona", "evidence": 0.7},
                    )
                )
            elif i == 3:
                scores[m].append(_score(p.id, p.lang, 2.0 + k, ("agent_talk",)))
            else:
                scores[m].append(_score(p.id, p.lang, 9.0))
    r = EvalResults(
        prompts=prompts,
        models=models,
        generations=gens,
        criteria=load_criteria(),
        languages=LANGS,
        scores=scores,
        candidates=candidates,
        facts={
            "persona": "Tester",
            "libraries": {"torch": "2.13.0"},
            "base_model": "smollm2-135m",
            "models": {
                "base": {"kind": "base", "source": None},
                candidates[0]: {"kind": "adapter", "source": "output/x", "sha256": "abc123"},
            },
            "generation": {"max_new_tokens": 96, "do_sample": False},
        },
    )
    r.nearest = {m: ["Some neighbouring question?"] * len(prompts) for m in models}
    compare_all(r)
    return r


@pytest.fixture(scope="module")
def results() -> EvalResults:
    return synthetic_results()


def test_a_hostile_reply_stays_text_in_the_page(results):
    page = render_html(results)
    assert "<script>alert(" not in page and "&lt;script&gt;alert(" in page
    assert page.count("<script>") == 1  # the page's own filter script, nothing else
    assert "**not bold**" in page and "<strong>not bold" not in page


def test_a_hostile_reply_stays_text_in_the_markdown(results):
    md = render(results)
    assert "<script>alert(" in md  # inside a fence, where Markdown shows it as written …
    block = md[md.index("<script>alert(") :]
    fence = re.findall(r"^(`{3,})text$", md[: md.index("<script>alert(")], flags=re.MULTILINE)[-1]
    assert len(fence) > 3 and block.index(fence) > block.index(
        "not a fence"
    )  # … and the reply's ``` cannot close it


def test_the_page_is_self_contained(results):
    page = render_html(results)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "@import" not in page
    assert "default-src 'none'" in page  # nothing may load, even if a reply slipped through


def test_every_prompt_and_model_is_in_the_matrix_with_its_full_reply(results):
    page = render_html(results)
    for p in results.prompts:
        assert f'id="p-{p.id}"' in page
    for m in results.models:
        assert f'<th data-model="{m}">' in page
    assert results.replies("base")[1].strip() in page  # the whole reply, not its first line


def test_every_part_is_shown_also_those_the_report_does_not_know(results):
    v = build_view(results)
    cell = v.rows[0].cells["candidate"]
    keys = dict(cell.parts)
    assert keys["impostor.voice"] == "other persona" and keys["impostor.evidence"] == "0.700"
    named = dict(cell.named)
    assert (
        named["degenerate"] == "loop"
        and named["nearest competing question"] == "Some neighbouring question?"
    )
    assert (
        "off topic" in cell.why
        and "degenerate: loop" in cell.why
        and "neighbouring question" in cell.why
    )
    agent = v.rows[3].cells["candidate"]
    assert (
        dict(agent.named)["agent patterns"] == "en.start_by"
        and "agent talk: en.start_by" in agent.why
    )


def test_flatten_names_nested_parts_by_path():
    assert flatten({"a": {"b": {"c": 1.0}}, "d": [], "e": None, "f": True}) == [
        ("a.b.c", "1.000"),
        ("d", "none"),
        ("e", "–"),
        ("f", "yes"),
    ]


def test_the_lowest_scoring_candidate_reply_is_named_with_why(results):
    low = build_view(results).lowest[0]
    assert low.row.id == "ev-en-0" and low.cell.score == 0.0
    assert "Lowest-scoring candidate reply: **ev-en-0** (0.00)" in render(results)
    assert 'data-row="p-ev-en-0"' in render_html(results)


def test_charts_use_fixed_scales_with_targets_and_intervals(results):
    series = build_view(results).series
    assert [s.scale for s in series] == [10, 100, 100, 100, 100, 10]
    assert series[0].target == results.criteria.personality_min
    assert all(b.low is not None and b.low <= b.value <= b.high for s in series for b in s.bars)
    assert chart_png(results)[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_facts_are_readable_not_json(results):
    md = render(results)
    facts = md[md.index("## Run facts") :]
    assert "adapter: output/x; adapter sha256 abc123" in facts and "base: smollm2-135m" in facts
    assert '{"' not in facts and "| torch" in facts


def test_several_candidates_are_extra_columns_with_their_own_verdicts():
    r = synthetic_results(("curated", "augmented"))
    page = render_html(r)
    assert '<th data-model="curated">' in page and '<th data-model="augmented">' in page
    assert '<option value="augmented|base">' in page and page.count('class="verdict"') == 2
    assert {c.candidate for c in r.comparisons} == {"curated", "augmented"}


def test_write_reports_writes_all_four(results, tmp_path):
    written = write_reports(results, tmp_path)
    assert sorted(p.name for p in written) == [
        "comparison.md",
        "comparison.png",
        "report.html",
        "results.json",
    ]
    assert all(p.stat().st_size > 0 for p in written)
