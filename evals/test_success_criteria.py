"""The success criteria of the seed plan, asserted on the candidate adapter.

Thresholds come from the criteria file (evals/criteria.yaml), never from here. Each failure
names the measured number, the threshold and the worst examples.
"""

from __future__ import annotations

import pytest

from molting.gate.run import CANDIDATE, canary_identical
from molting.gate.report import checks


def _check(gate, name: str):
    found = {c.name: c for c in checks(gate)}
    if name not in found:
        pytest.fail(f"criterion {name} does not apply to this run (no such language or baseline)", pytrace=False)
    return found[name]


def _worst(gate, key, k: int = 3, lang: str | None = None) -> str:
    rows = [(i, s) for i, s in enumerate(gate.scores[CANDIDATE]) if lang is None or s.lang == lang]
    rows.sort(key=key)
    return "\n".join(f"  - {gate.prompts[i]['id']}: {gate.replies(CANDIDATE)[i][:140]!r} "
                     f"(personality {s.personality:.1f}, gates {', '.join(s.gates) or '–'})" for i, s in rows[:k])


def _assert(gate, name: str, worst: str) -> None:
    c = _check(gate, name)
    assert c.passed, f"{c.metric}: measured {c.shown}, target {c.target}. Worst replies:\n{worst}"


def test_adapters_are_applied(gate):
    same = canary_identical(gate)
    assert not same, f"adapter(s) {', '.join(same)} produced exactly the base model's replies: not applied?"


def test_personality(gate):
    _assert(gate, "personality", _worst(gate, key=lambda r: r[1].personality))


@pytest.mark.parametrize("lang", ["en", "pt"])
def test_agent_phrase_rate(gate, lang):
    _assert(gate, f"agent_rate_{lang}", _worst(gate, key=lambda r: not r[1].agent_like, lang=lang))


def test_directness(gate):
    _assert(gate, "directness", _worst(gate, key=lambda r: r[1].direct))


def test_pt_prompts_answered_in_portuguese(gate):
    _assert(gate, "pt_language", _worst(gate, key=lambda r: r[1].lang_match, lang="pt"))


def test_pt_fluency(gate):
    _assert(gate, "pt_fluency", _worst(gate, key=lambda r: r[1].fluency or 0.0, lang="pt"))


def test_candidate_beats_baseline_on_personality(gate, baseline_name):
    comp = next(c for c in gate.comparisons if c.baseline == baseline_name)
    iv = comp.personality
    assert iv.low > 0, (f"personality Δ vs {baseline_name}: {iv.estimate:+.2f}, 95% CI [{iv.low:+.2f}, {iv.high:+.2f}] "
                        f"(half-width {iv.half_width:.2f}) does not exclude 0")


def test_no_agent_phrase_regression(gate, baseline_name):
    c = _check(gate, f"no_agent_regression_{baseline_name}")
    assert c.passed, f"agent phrases vs {baseline_name}: {c.shown}; the candidate is flagged significantly more often"
