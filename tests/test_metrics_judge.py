"""The optional LLM judge's plumbing, on a tiny random Llama with SmolLM2's tokenizer; the rubric
comes from the persona card."""

from __future__ import annotations

import pytest

from molting.errors import EvalError
from molting.metrics.judge import LEVELS, LLMJudge, rubric
from molting.persona import Prompt

PROMPT = Prompt("p", "en", "List or tuple for constants?", "Tuple.")


@pytest.fixture(scope="module")
def judge(tiny_llama_dir, claudio):
    return LLMJudge.from_pretrained(str(tiny_llama_dir), claudio.card, device="cpu")


def test_judge_reads_a_bounded_probability_weighted_score(judge):
    s = judge.score(PROMPT, "Short answer: tuple.")
    assert set(s.probs) == set(LEVELS) and sum(s.probs.values()) == pytest.approx(1.0)
    assert 1.0 <= s.expected_level <= 5.0 and 0.0 <= s.score <= 10.0
    assert s.score == pytest.approx((s.expected_level - 1) / 4 * 10)


def test_judge_is_deterministic(judge):
    assert judge.score(PROMPT, "Tuple.") == judge.score(PROMPT, "Tuple.")


def test_the_rubric_comes_from_the_card_with_a_scale_and_the_reply(judge, claudio):
    text = judge.prompt_text(PROMPT.prompt, "Tuple, obviously.")
    assert all(f"\n{level} - " in text for level in LEVELS) and "Tuple, obviously." in text
    assert claudio.card.name in text and claudio.card.examples[0][1] in text


def test_a_card_without_examples_still_gives_a_complete_rubric(claudio):
    from dataclasses import replace

    card = replace(claudio.card, name="Someone Else", examples=())
    text = rubric(card)
    assert (
        "Someone Else" in text
        and "Cláudio" not in text
        and all(f"\n{level} - " in text for level in LEVELS)
    )


def test_judge_refuses_empty_input(judge):
    with pytest.raises(EvalError):
        judge.score_many([], [])
    with pytest.raises(ValueError):
        judge.score(Prompt("p", "en", " ", "x"), "x")
