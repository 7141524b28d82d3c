"""Negative replies built deterministically from the bundle's own prompts (same input → same
text), so every persona gets the same kinds of controls without hand work:

- generic: the prompt's hand-written `generic` reply, else a packaged generic reply;
- agent: the prompt's hand-written `agent_like` reply, else the reference behind an agent preamble;
- impostor: a reply in another voice (molting.metrics.impostors), chosen by hash;
- stuffed: the generic reply with 2–3 of the card's signature expressions pasted in;
- near_miss: the persona's reply to the nearest OTHER question (same subject, other question);
- far: the reference of an unrelated prompt of the same language (half the split away);
- wrong_language: a reference in another of the persona's languages;
- loop / shuffled / garbled / repeat_sentence / fragment: degenerate text made from the reference.

    >>> loop(Prompt("x", "pt", "?", "Olha só: usa um pool de conexões.")).split()[:6]
    ['Olha', 'só:', 'usa', 'um,', 'Olha', 'só:']
"""

from __future__ import annotations

import random
import zlib

import numpy as np

from molting.metrics.text import sentences
from molting.persona import Card, Prompt

SYLLABLES = (
    "ca",
    "pre",
    "lon",
    "di",
    "vas",
    "to",
    "mer",
    "qui",
    "sal",
    "bro",
    "nhe",
    "ul",
    "fa",
    "ren",
    "cho",
)
LOOP_WORDS = 30  # small models' loops run until max_new_tokens
AGENT_PREAMBLES = {
    "en": (
        "I'll start by going through what you sent, then I'll put together an answer.",
        "Let me check a few things first before I answer.",
        "First I'll reproduce the problem, then I'll look for the cause.",
    ),
    "pt": (
        "Vou começar analisando o que você mandou e depois monto uma resposta.",
        "Deixa eu verificar umas coisas antes de responder.",
        "Primeiro vou reproduzir o problema, depois procuro a causa.",
    ),
}


def _rng(prompt: Prompt, salt: str) -> random.Random:
    return random.Random(zlib.crc32(f"{prompt.id}/{salt}".encode()))


def generic(prompt: Prompt, pool: list[dict]) -> str:
    """The hand-written generic reply, else a packaged one of the same language (by hash)."""
    if prompt.negatives.get("generic"):
        return prompt.negatives["generic"]
    return _pick(pool, prompt.lang, prompt.id)


def _pick(rows: list[dict], lang: str, key: str) -> str:
    """A reply of `lang` (any language where none is), chosen by a hash of `key`."""
    same = [r["reply"] for r in rows if r["lang"] == lang] or [r["reply"] for r in rows]
    return same[zlib.crc32(key.encode()) % len(same)]


def agent(prompt: Prompt) -> str:
    if prompt.negatives.get("agent_like"):
        return prompt.negatives["agent_like"]
    return f"{_rng(prompt, 'agent').choice(AGENT_PREAMBLES[prompt.lang])}\n\n{prompt.reference}"


def stuffed(prompt: Prompt, card: Card, generic_reply: str) -> str:
    """Catchphrase stuffing: 2–3 of the card's signature expressions around a generic reply."""
    phrases = list(card.signatures.get(prompt.lang, ())) or card.all_signatures()
    if not phrases:
        return generic_reply
    rng = _rng(prompt, "stuffed")
    opener, closer = rng.choice(phrases), rng.choice(phrases)
    body = generic_reply
    if rng.random() < 0.5:  # a third phrase in the middle, before the second sentence
        sents = sentences(body)
        body = " ".join(sents[:1] + [rng.choice(phrases)] + sents[1:])
    return f"{opener} {body} {closer}"


def far(prompts: list[Prompt], i: int) -> str:
    same = [p for p in prompts if p.lang == prompts[i].lang]
    j = same.index(prompts[i])
    return same[(j + len(same) // 2) % len(same)].reference


def near_miss(
    prompt_vecs: np.ndarray,
    pair_vecs: np.ndarray,
    pairs: list,
    langs: list[str],
    i: int,
    lang: str,
    same_prompt: float,
) -> tuple[str, str] | None:
    """(reply, its prompt) of the nearest other question of the same language, or None."""
    sims = pair_vecs @ prompt_vecs[i]
    order = np.argsort(-sims)
    for j in order:
        if langs[j] == lang and sims[j] < same_prompt:
            return pairs[j].reply, pairs[j].prompt
    return None


def wrong_language(prompts: list[Prompt], i: int) -> str | None:
    others = [p for p in prompts if p.lang != prompts[i].lang]
    return others[i % len(others)].reference if others else None


def loop(prompt: Prompt) -> str:
    head = prompt.reference.split()[:4]
    phrase = " ".join(head[:-1] + [head[-1].rstrip(".,:;!?") + ","])
    out: list[str] = []
    while len(out) < LOOP_WORDS:
        out += phrase.split()
    return " ".join(out).rstrip(",") + "…"


def shuffled(prompt: Prompt) -> str:
    ws = prompt.reference.split()
    _rng(prompt, "shuffled").shuffle(ws)
    return " ".join(ws)


def garbled(prompt: Prompt) -> str:
    rng = _rng(prompt, "garbled")
    ws = prompt.reference.split()
    return " ".join(
        w
        if i % 2 == 0 or "`" in w
        else "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        for i, w in enumerate(ws)
    )


def repeat_sentence(prompt: Prompt) -> str:
    """The reference, then its own longest sentence three more times (the mildest loop). The
    longest, not the last: a persona who closes with "Faz sentido?" would otherwise get a loop
    so mild that ordinary parallel phrasing ("erro tipo I é…; erro tipo II é…") fell under it
    and lost all fluency credit."""
    longest = max(sentences(prompt.reference), key=len)
    return " ".join([prompt.reference] + [longest] * 3)


def fragment(prompt: Prompt) -> str:
    return " ".join(prompt.reference.split()[:3])


def echo(prompt: Prompt) -> str:
    """The prompt said back as the reply."""
    return prompt.prompt
