"""The optional LLM judge's plumbing, on a tiny random Llama with SmolLM2's tokenizer."""

from __future__ import annotations

import pytest

from molting.errors import ConfigError, EvalError
from molting.metrics import criteria_scorer
from molting.metrics.judge import LEVELS, LLMJudge

PROMPT = {"id": "p", "lang": "en", "prompt": "List or tuple for constants?", "reference": "Tuple."}


@pytest.fixture(scope="module")
def judge(tiny_llama_dir):
    return LLMJudge.from_pretrained(str(tiny_llama_dir), device="cpu")


def test_judge_reads_a_bounded_probability_weighted_score(judge):
    s = judge.score(PROMPT, "Short answer: tuple.")
    assert set(s.probs) == set(LEVELS) and sum(s.probs.values()) == pytest.approx(1.0)
    assert 1.0 <= s.expected_level <= 5.0 and 0.0 <= s.score <= 10.0
    assert s.score == pytest.approx((s.expected_level - 1) / 4 * 10)


def test_judge_is_deterministic(judge):
    assert judge.score(PROMPT, "Tuple.") == judge.score(PROMPT, "Tuple.")


def test_judge_prompt_carries_rubric_examples_and_the_reply(judge):
    text = judge.prompt_text(PROMPT["prompt"], "Tuple, obviously.")
    assert all(f"\n{level} - " in text for level in LEVELS) and "Tuple, obviously." in text


def test_judge_refuses_empty_input(judge):
    with pytest.raises(EvalError):
        judge.score_many([], [])
    with pytest.raises(ValueError):
        judge.score({"id": "p", "lang": "en", "prompt": ""}, "x")


def test_unknown_metrics_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="offline"):
        criteria_scorer({"backend": "gpt4"})
