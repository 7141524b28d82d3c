"""Optional LLM judge: any local transformers causal LM rates persona adherence 1–5 against a
rubric with one example reply per level (PersonaGym, arXiv 2407.18416); the score is the
probability-weighted mean over the score tokens, as G-Eval does (Liu et al. 2023), mapped to 0–10.

Never the default: a judge alone is not proof (PersonaEval, arXiv 2508.10014: the best judges
identify the speaking character ~69% of the time vs 90.8% for humans). Select it in the criteria
file with `metrics: {backend: judge, judge_model: <hub id or path>}` on a machine with a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from molting.errors import ModelError

LEVELS = ("1", "2", "3", "4", "5")
RUBRIC = """You rate how well a reply matches the persona Cláudio: a Brazilian senior software engineer
who answers first (no preamble, no "Let me check…", no planning out loud), is warm, a little witty,
concrete, short, and replies in the user's language (Brazilian Portuguese, never European).

Score levels, each with an example reply to "Should I use a list or a tuple for constant config values?":
1 - Agent talk or off-topic. "I'll start by reading your config files to understand how the values are used."
2 - Generic assistant filler. "Great question! There are several factors to consider. I hope this helps!"
3 - Correct but bland, no persona. "Use a tuple because it is immutable."
4 - Direct and correct, some persona. "Tuple. It's immutable, so nobody changes it by accident."
5 - Fully Cláudio. "Short answer: tuple. It's immutable, so nobody appends a 'temporary' value at 2 a.m. and ships it."

Answer with one digit from 1 to 5."""


@dataclass(frozen=True)
class JudgeScore:
    score: float  # 0–10
    expected_level: float  # 1–5, probability-weighted
    probs: dict[str, float]  # normalised over the five score tokens


class LLMJudge:
    """Wraps a loaded causal LM + tokenizer; `score(prompt, reply)` reads next-token probabilities."""

    def __init__(self, model, tokenizer, rubric: str = RUBRIC):
        self.model, self.tok, self.rubric = model.eval(), tokenizer, rubric
        self.level_ids = []
        for level in LEVELS:
            ids = tokenizer.encode(level, add_special_tokens=False)
            if len(ids) != 1:
                raise ModelError(f"judge tokenizer splits the score {level!r} into {len(ids)} tokens; "
                                 "pick a model whose tokenizer has single-digit tokens")
            self.level_ids.append(ids[0])

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str | None = None, **kw) -> LLMJudge:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(name_or_path, **kw)
            model = AutoModelForCausalLM.from_pretrained(name_or_path, **kw)
        except OSError as err:
            raise ModelError(f"judge model {name_or_path!r} cannot be loaded: {err}") from None
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(device), tok)

    def prompt_text(self, prompt: str, reply: str) -> str:
        user = f"{self.rubric}\n\nUser message:\n{prompt}\n\nReply to rate:\n{reply}\n\nScore:"
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                add_generation_prompt=True)
        return user + " "

    def score(self, prompt: dict, reply: str) -> JudgeScore:
        import torch

        if not str(prompt.get("prompt", "")).strip():
            raise ValueError("the judge needs the user's prompt")
        text = self.prompt_text(prompt["prompt"], reply)
        batch = self.tok(text, return_tensors="pt", add_special_tokens=False).to(self.model.device)
        with torch.inference_mode():
            logits = self.model(**batch).logits[0, -1].float()
        p = torch.softmax(logits[self.level_ids], dim=-1).tolist()
        expected = sum((i + 1) * pi for i, pi in enumerate(p))
        return JudgeScore(score=(expected - 1) / 4 * 10, expected_level=expected, probs=dict(zip(LEVELS, p)))

    def score_many(self, prompts: list[dict], replies: list[str]) -> list[JudgeScore]:
        if not replies:
            from molting.errors import EvalError

            raise EvalError("nothing to judge: an empty eval set never passes")
        return [self.score(p, r) for p, r in zip(prompts, replies)]
