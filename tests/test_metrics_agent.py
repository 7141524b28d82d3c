"""Agent-phrase rate, directness and the Wilson interval."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import TEST_DATA
from molting.errors import EvalError
from molting.io import read_jsonl
from molting.metrics.agent import (
    PREAMBLE_EXAMPLES,
    agent_rate,
    directness,
    flag_quality,
    preamble_id,
    wilson_interval,
)


@pytest.mark.parametrize(
    "k, n, low, high",
    [
        (
            0,
            70,
            0.0,
            0.0520,
        ),  # no agent phrase in 70 replies still leaves up to ~5% (computed by hand)
        (7, 70, 0.0493, 0.1923),
        (35, 35, 0.9011, 1.0),
    ],
)
def test_wilson_interval_matches_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_of_nothing_raises():
    with pytest.raises(EvalError):
        wilson_interval(0, 0)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@example((148, 148))  # rounding put the upper bound at 0.9999999999999999
def test_wilson_interval_is_bounded_and_contains_the_rate(kn):
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


@pytest.mark.parametrize(
    "text, direct, agent",
    [
        ("Short answer: tuple. It's immutable.", True, False),
        ("Let me know if it breaks.", True, False),
        ("Vou ser sincero: refatora tudo.", True, False),
        ("Deixa eu te dar uma dica: usa `ss -tulpn`.", True, False),
        ("Great question! There are several factors to consider.", False, False),
        ("Certamente! Existem diversas abordagens.", False, False),
        ("Thank you for sharing your query. Use a range.", False, False),
        ("Let me check the logs first.", False, True),
        ("Vou analisar o arquivo primeiro.", False, True),
        ("Use a tuple. Running `pytest -q`... all green.", False, True),
    ],
)
def test_directness_table(text, direct, agent):
    d = directness(text)
    assert (d.direct, d.agent_like) == (direct, agent)


@pytest.mark.parametrize("pid", sorted(PREAMBLE_EXAMPLES))
def test_preamble_examples(pid):
    positives, negatives = PREAMBLE_EXAMPLES[pid]
    for text in positives:
        assert preamble_id(text) == pid, text
    for text in negatives:
        assert preamble_id(text) is None, text


def test_agent_rate_is_per_language_with_wilson_interval():
    rates = agent_rate(
        ["Let me check the logs.", "Use a tuple.", "Vou analisar o log.", "Usa um set."],
        ["en", "en", "pt", "pt"],
    )
    assert set(rates) == {"all", "en", "pt"}
    assert (rates["en"].k, rates["en"].n, rates["all"].k) == (1, 2, 2)
    assert rates["all"].low < 0.5 < rates["all"].high


def test_agent_rate_of_no_replies_raises():
    with pytest.raises(EvalError):
        agent_rate([], [])


def test_agent_flags_have_high_precision_and_recall_on_labelled_replies():
    rows = read_jsonl(TEST_DATA / "agent_phrases_labelled.jsonl")
    assert sum(r["agent_like"] for r in rows) >= 30 and sum(not r["agent_like"] for r in rows) >= 30
    q = flag_quality([r["text"] for r in rows], [r["agent_like"] for r in rows])
    assert q.precision >= 0.9 and q.recall >= 0.9, q


def test_tricky_direct_replies_are_not_flagged():
    tricky = [
        r["text"]
        for r in read_jsonl(TEST_DATA / "agent_phrases_labelled.jsonl")
        if not r["agent_like"]
        and r["text"].lower().startswith(("let me", "vou", "deixa eu", "i'll", "i'm going"))
    ]
    assert len(tricky) >= 5
    assert not any(directness(t).agent_like for t in tricky)
