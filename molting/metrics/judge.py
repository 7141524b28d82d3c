"""Optional LLM judge: any local transformers causal LM rates persona adherence 1–5 against a
rubric with one example reply per level (PersonaGym, arXiv 2407.18416); the score is the
probability-weighted mean over the score tokens, as G-Eval does (Liu et al. 2023), mapped to 0–10.

Never the default and never asserted: a judge alone is not proof (PersonaEval, arXiv 2508.10014:
the best judges identify the speaking character ~69% of the time vs 90.8% for humans). Select it
with `judge: <hub id or local path>` in the criteria file, on a machine with a GPU; the rubric
comes from the persona card.
"""

from __future__ import annotations

from dataclasses import dataclass

from molting.errors import EvalError, ModelError
from molting.persona import Card, Prompt

LEVELS = ("1", "2", "3", "4", "5")
_LEVEL_TEXT = (
    (
        "1",
        "Agent talk or off-topic: narrates its own process or answers something else.",
        "I'll start by reading your files to understand the problem, then I'll get back to you.",
    ),
    (
        "2",
        "Generic assistant filler: padded, impersonal.",
        "Great question! There are several factors to consider. I hope this helps!",
    ),
    ("3", "Correct but bland: answers, with none of the persona's voice.", None),
    ("4", "Direct and correct, some of the persona's voice.", None),
    ("5", "Fully in character, as the card describes.", None),
)


def rubric(card: Card) -> str:
    """The judge's rubric, from the persona card: who, the voice rules, the never-list, and a
    level scale with an example where one exists (the card's own example reply for level 5)."""
    langs = ", ".join(
        {"en": "English", "pt": "Brazilian Portuguese"}.get(lg, lg) for lg in card.languages
    )
    lines = [
        f"You rate how well a reply matches the persona {card.name}. {card.summary}".strip(),
        f"Languages: {langs}; the reply must be in the language of the user's message.",
    ]
    if card.voice:
        lines.append(f"Voice: {card.voice}")
    if card.never:
        lines.append("Never: " + "; ".join(card.never))
    lines += ["", "Score levels:"]
    example5 = card.examples[0][1] if card.examples else None
    for level, text, example in _LEVEL_TEXT:
        example = example5 if level == "5" else example
        lines.append(f"{level} - {text}" + (f' Example: "{example}"' if example else ""))
    lines += ["", "Answer with one digit from 1 to 5."]
    return "\n".join(lines)


@dataclass(frozen=True)
class JudgeScore:
    score: float  # 0–10
    expected_level: float  # 1–5, probability-weighted
    probs: dict[str, float]  # normalised over the five score tokens


class LLMJudge:
    """Wraps a loaded causal LM + tokenizer; `score(prompt, reply)` reads next-token
    probabilities."""

    def __init__(self, model, tokenizer, rubric_text: str):
        self.model, self.tok, self.rubric = model.eval(), tokenizer, rubric_text
        self.level_ids = []
        for level in LEVELS:
            ids = tokenizer.encode(level, add_special_tokens=False)
            if len(ids) != 1:
                raise ModelError(
                    f"judge tokenizer splits the score {level!r} into {len(ids)} tokens; "
                    "pick a model whose tokenizer has single-digit tokens"
                )
            self.level_ids.append(ids[0])

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, card: Card, device: str | None = None, **kw
    ) -> LLMJudge:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(name_or_path, **kw)
            model = AutoModelForCausalLM.from_pretrained(name_or_path, use_safetensors=True, **kw)
        except OSError as err:
            raise ModelError(f"judge model {name_or_path!r} cannot be loaded: {err}") from None
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(device), tok, rubric(card))

    def prompt_text(self, prompt: str, reply: str) -> str:
        user = f"{self.rubric}\n\nUser message:\n{prompt}\n\nReply to rate:\n{reply}\n\nScore:"
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(
                [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
            )
        return user + " "

    def score(self, prompt: Prompt, reply: str) -> JudgeScore:
        import torch

        if not prompt.prompt.strip():
            raise ValueError("the judge needs the user's prompt")
        text = self.prompt_text(prompt.prompt, reply)
        batch = self.tok(text, return_tensors="pt", add_special_tokens=False).to(self.model.device)
        with torch.inference_mode():
            logits = self.model(**batch).logits[0, -1].float()
        p = torch.softmax(logits[self.level_ids], dim=-1).tolist()
        expected = sum((i + 1) * pi for i, pi in enumerate(p))
        return JudgeScore(
            score=(expected - 1) / 4 * 10, expected_level=expected, probs=dict(zip(LEVELS, p))
        )

    def score_many(self, prompts: list[Prompt], replies: list[str]) -> list[JudgeScore]:
        if not replies:
            raise EvalError("nothing to judge: an empty eval set never passes")
        return [self.score(p, r) for p, r in zip(prompts, replies)]
