"""Tokenize a conversation with its chat template and label only the assistant turns.

Every assistant turn is trained (not just the last), including the turn's end token so the
model learns to stop (`<|im_end|>` for ChatML, `<|end|>` for Phi-3); system and user tokens
are -100. The spans come from rendering the template turn by turn; the labels come from the
token offsets of ONE tokenization of the full text, so token boundaries match inference.

    >>> ex = encode(tok, conv, max_seq_length=1024)
    >>> tok.decode([t for t, l in zip(ex.input_ids, ex.labels) if l != IGNORE])
    'Oi!<|im_end|>'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from molting.data import Conversation
from molting.errors import DatasetError

IGNORE = -100  # the label PyTorch's cross-entropy skips


@dataclass(frozen=True)
class Example:
    index: int  # the conversation's index in the dataset file
    input_ids: list[int]
    labels: list[int]
    full_length: int  # tokens before truncation

    @property
    def n_trainable(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)

    @property
    def truncated(self) -> bool:
        return self.full_length > len(self.input_ids)


def to_messages(conv: Conversation) -> list[dict[str, str]]:
    return [{"role": t.role, "content": t.content} for t in conv.turns]


def render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def assistant_spans(
    tokenizer: Any, messages: list[dict[str, str]], where: str = ""
) -> tuple[str, list[tuple[int, int]]]:
    """The full rendering and the character span of each assistant reply plus its end token.

    Turn i's span starts where the template's generation prompt for turn i ends, and ends where
    the rendering of turns 0..i stops agreeing with the full text (trailing whitespace dropped).
    """
    full = render(tokenizer, messages, add_generation_prompt=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:i], add_generation_prompt=True)
        upto = render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not full.startswith(prompt):
            raise DatasetError(
                [
                    (
                        f"{where}turn {i}: the chat template renders this turn differently "
                        "in context (does the conversation start with an assistant turn?)."
                    )
                ]
            )
        end = _common_prefix(upto, full)
        while end > len(prompt) and full[end - 1].isspace():
            end -= 1
        if end <= len(prompt):
            raise DatasetError(
                [f"{where}turn {i}: the chat template dropped this assistant reply."]
            )
        spans.append((len(prompt), end))
    return full, spans


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def encode(tokenizer: Any, conv: Conversation, max_seq_length: int) -> Example:
    """Token ids and labels for one conversation, truncated to `max_seq_length` tokens.

    A token is trained when it ends inside an assistant span: a token that starts in the
    template's prompt and runs into the reply is kept (no reply character is lost); one that
    runs past the reply's end (into the next turn's header) is not.
    """
    full, spans = assistant_spans(tokenizer, to_messages(conv), where=f"example {conv.index}, ")
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    trained = _trained_tokens(full, offsets, spans)
    labels = [tok if k in trained else IGNORE for k, tok in enumerate(ids)]
    return Example(conv.index, ids[:max_seq_length], labels[:max_seq_length], len(ids))


def _trained_tokens(
    full: str, offsets: list[tuple[int, int]], spans: list[tuple[int, int]]
) -> set[int]:
    """Indices of tokens that end inside a span, minus trailing whitespace-only tokens (a span
    can run into the next turn's header when both start alike, e.g. '<|end|>\n<|' in Phi-3)."""
    trained: set[int] = set()
    for s, e in spans:
        inside = [k for k, (a, b) in enumerate(offsets) if b > a and s < b <= e]
        while inside and not full[offsets[inside[-1]][0] : offsets[inside[-1]][1]].strip():
            inside.pop()
        trained.update(inside)
    return trained


def labelled_segments(tokenizer: Any, example: Example) -> list[str]:
    """The decoded text of each run of consecutive trained tokens (one per assistant turn)."""
    segments, current = [], []
    for tok, label in zip(example.input_ids, example.labels):
        if label != IGNORE:
            current.append(tok)
        elif current:
            segments.append(tokenizer.decode(current))
            current = []
    if current:
        segments.append(tokenizer.decode(current))
    return segments


def describe(tokenizer: Any, example: Example, limit: int | None = None) -> str:
    """One line per token: position, id, trained or masked, the token text (for --dry-run)."""
    lines = [
        (
            f"example {example.index}: {len(example.input_ids)} tokens, {example.n_trainable} "
            "trained (+ = trained, . = masked)"
        )
    ]
    rows = list(zip(example.input_ids, example.labels))[:limit]
    for pos, (tok, label) in enumerate(rows):
        mark = "+" if label != IGNORE else "."
        lines.append(f"{pos:5d} {mark} {tok:7d} {tokenizer.decode([tok])!r}")
    if limit is not None and len(example.input_ids) > limit:
        lines.append(f"  … {len(example.input_ids) - limit} more tokens")
    return "\n".join(lines)
