"""Negative replies built deterministically from a prompt record (same record → same text).

Hand-written negatives live in fixtures/claudio/negatives/ and in each prompt record (generic,
agent_like, european_pt). Built here, so they never drift from the records they come from:
- stuffed: the generic reply with Cláudio's signature expressions pasted in (2–3 of them);
- off_topic: the reference of another prompt in the same language (half the split away);
- english_for_pt: an English reference given to a Portuguese prompt;
- loop: SmolLM2-style looping ("Alejandro, a criado, a criado, a criado…");
- shuffled: the reference's words in a random (seeded) order — known words, no grammar;
- garbled: every other word of the reference replaced by a pronounceable non-word;
- echo: the reference followed by its own last sentence three more times.

    >>> loop({"id": "x", "reference": "Olha só: usa um pool de conexões."}).split()[:6]
    ['Olha', 'só:', 'usa', 'um,', 'Olha', 'só:']
"""

from __future__ import annotations

import random
import zlib

from molting.metrics.text import sentences

OPENERS = {"en": ["Short answer:", "Here's the thing:", "Bottom line:", "Quick tip:"],
           "pt": ["Olha só:", "Resumindo:", "Na real,", "Beleza,"]}
CLOSERS = {"en": ["Been there.", "You've got this."], "pt": ["Fica a dica.", "Vai dar bom!", "Bora!", "Tranquilo."]}
SYLLABLES = ("ca", "pre", "lon", "di", "vas", "to", "mer", "qui", "sal", "bro", "nhe", "ul", "fa", "ren", "cho")
LOOP_WORDS = 30  # SmolLM2's loops ran until max_new_tokens


def _rng(record: dict, salt: str) -> random.Random:
    return random.Random(zlib.crc32(f"{record['id']}/{salt}".encode()))


def stuffed(record: dict) -> str:
    rng, lang = _rng(record, "stuffed"), record["lang"]
    opener, closer = rng.choice(OPENERS[lang]), rng.choice(CLOSERS[lang])
    body = record["generic"]
    if rng.random() < 0.5:  # a third phrase in the middle, before the second sentence
        sents = sentences(body)
        middle = rng.choice([o for o in OPENERS[lang] if o != opener])
        body = " ".join(sents[:1] + [middle] + sents[1:])
    return f"{opener} {body} {closer}"


def off_topic(records: list[dict], i: int) -> str:
    same = [r for r in records if r["lang"] == records[i]["lang"]]
    j = same.index(records[i])
    return same[(j + len(same) // 2) % len(same)]["reference"]


def english_for_pt(records: list[dict], i: int, pool: list[dict] | None = None) -> str:
    """An English reference (from `pool`, default `records`) for record i."""
    en = [r for r in (pool or records) if r["lang"] == "en"]
    return en[i % len(en)]["reference"]


def loop(record: dict) -> str:
    head = record["reference"].split()[:4]
    phrase = " ".join(head[:-1] + [head[-1].rstrip(".,:;!?") + ","])
    out = []
    while len(out) < LOOP_WORDS:
        out += phrase.split()
    return " ".join(out).rstrip(",") + "…"


def shuffled(record: dict) -> str:
    ws = record["reference"].split()
    _rng(record, "shuffled").shuffle(ws)
    return " ".join(ws)


def garbled(record: dict) -> str:
    rng = _rng(record, "garbled")
    ws = record["reference"].split()
    out = [w if i % 2 == 0 or "`" in w else "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
           for i, w in enumerate(ws)]
    return " ".join(out)


def echo(record: dict) -> str:
    last = sentences(record["reference"])[-1]
    return " ".join([record["reference"]] + [last] * 3)
