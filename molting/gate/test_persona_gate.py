"""The persona acceptance gate: the seed plan's success criteria, asserted on the candidate.

Collected with `pytest --pyargs molting.gate --persona DIR …` (or, in the molting repository,
`pytest evals/ --persona DIR …`). Thresholds come from the criteria files, never from here;
each failure names the measured number, the threshold and the worst replies.
"""

from __future__ import annotations

import pytest

from molting.gate.records import CANDIDATE


def _check(gate, name: str):
    found = {c.name: c for c in gate.checks()}
    if name not in found:
        pytest.skip(
            f"criterion {name} does not apply: no prompts in that language for this persona"
        )
    return found[name]


def _worst(gate, key, k: int = 3, lang: str | None = None) -> str:
    rows = [(i, s) for i, s in enumerate(gate.scores[CANDIDATE]) if lang is None or s.lang == lang]
    rows.sort(key=key)
    return "\n".join(
        f"  - {gate.prompts[i].id}: {gate.replies(CANDIDATE)[i][:140]!r} "
        f"(personality {s.personality:.1f}, gates {', '.join(s.gates) or '–'})"
        for i, s in rows[:k]
    )


def _assert(gate, name: str, worst: str) -> None:
    c = _check(gate, name)
    assert c.passed, f"{c.metric}: measured {c.shown}, target {c.target}. Worst replies:\n{worst}"


def test_adapters_are_applied(gate):
    same = gate.facts.get("identical_to_base", [])
    assert not same, (
        f"model(s) {', '.join(same)} produced exactly the base model's replies: adapter not "
        "applied?"
    )


def test_personality(gate):
    _assert(gate, "personality", _worst(gate, key=lambda r: r[1].personality))


def test_agent_phrase_rate(gate, gate_lang):
    _assert(
        gate,
        f"agent_rate_{gate_lang}",
        _worst(gate, key=lambda r: not r[1].agent_like, lang=gate_lang),
    )


def test_directness(gate):
    _assert(gate, "directness", _worst(gate, key=lambda r: r[1].direct))


def test_pt_prompts_answered_in_portuguese(gate):
    _assert(gate, "pt_language", _worst(gate, key=lambda r: r[1].lang_match, lang="pt"))


def test_pt_fluency(gate):
    _assert(gate, "pt_fluency", _worst(gate, key=lambda r: r[1].fluency or 0.0, lang="pt"))


def test_candidate_beats_baseline_on_personality(gate, baseline_name):
    c = _check(gate, f"beats_{baseline_name}")
    assert c.passed, f"{c.metric}: {c.shown} does not exclude 0"


def test_no_agent_phrase_regression(gate, baseline_name):
    c = _check(gate, f"no_agent_regression_{baseline_name}")
    assert c.passed, (
        f"agent phrases vs {baseline_name}: {c.shown}; the candidate is flagged significantly more "
        "often"
    )
