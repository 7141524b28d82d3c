"""Other voices: invented people who answer as directly and competently as the persona, each in
a voice of their own. Fitted against them, the persona metric learns *this* voice instead of
"not an assistant" (the general impostors method of authorship verification: Koppel & Winter
2014, "Determining if two documents are written by the same author", JASIST 65(1)).

The packaged corpus (molting/metrics/data/impostors/, MIT like the package) holds one card
(`<voice>.yaml`: name, voice, signature expressions) and one reply file (`<voice>.jsonl`:
{"voice", "prompt_id", "lang", "reply"}) per voice, every voice answering the same
`prompts.jsonl` in English and Brazilian Portuguese, so what separates them is voice, not
subject. A bundle may add its own: DIR/negatives/impostor.jsonl ({"lang", "reply"}, optional
"voice", "prompt"), e.g. colleagues' replies in the same chat.

    >>> sorted({r["voice"] for r in packaged_impostors()})[:2]
    ['beatriz_almeida', 'ingrid_sauer']
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from molting.io import read_jsonl, read_yaml_mapping
from molting.persona import Persona, normalize_lang

CORPUS = Path(__file__).with_name("data") / "impostors"
BUNDLE_VOICE = "bundle"  # the voice id of a bundle's own impostor rows that name none
FOLDS = 4  # cross-fitting: each fold's voices are scored by a style model that never saw them


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    signatures: dict[str, tuple[str, ...]]  # language → signature expressions


@cache
def packaged_voices() -> tuple[Voice, ...]:
    out = []
    for path in sorted(CORPUS.glob("*.yaml")):
        card = read_yaml_mapping(path, "packaged impostor card")
        sigs = card.get("signature_expressions") or {}
        out.append(
            Voice(
                path.stem,
                str(card.get("name", path.stem)),
                {normalize_lang(k, str(path)): tuple(v) for k, v in sigs.items()},
            )
        )
    return tuple(out)


@cache
def packaged_impostors() -> tuple[dict, ...]:
    """Every packaged impostor reply: {"voice", "lang", "prompt", "reply"}."""
    prompts = {
        r["id"]: r["prompt"]
        for r in read_jsonl(CORPUS / "prompts.jsonl", "packaged impostor prompts")
    }
    rows = []
    for voice in packaged_voices():
        for r in read_jsonl(CORPUS / f"{voice.id}.jsonl", "packaged impostor replies"):
            rows.append(
                {
                    "voice": voice.id,
                    "lang": normalize_lang(r["lang"], str(CORPUS / voice.id)),
                    "prompt": prompts[r["prompt_id"]],
                    "reply": r["reply"],
                }
            )
    return tuple(rows)


def impostor_rows(persona: Persona) -> list[dict]:
    """The packaged voices in the persona's languages, then the bundle's own impostor replies."""
    rows = [r for r in packaged_impostors() if r["lang"] in persona.languages]
    own = persona.negatives("impostor")
    return rows + [{"voice": BUNDLE_VOICE, **r} for r in own if r["lang"] in persona.languages]


def folds(voices: list[str]) -> dict[str, int]:
    """Each voice's cross-fitting fold: voices in sorted order, dealt round the FOLDS folds."""
    return {v: i % FOLDS for i, v in enumerate(sorted(set(voices)))}


def foreign_signatures(persona: Persona) -> list[str]:
    """Other voices' signature expressions that are not also the persona's own."""
    own = {s.strip().lower() for s in persona.card.all_signatures()}
    return sorted(
        {
            s
            for v in packaged_voices()
            for lang in persona.languages
            for s in v.signatures.get(lang, ())
            if s.strip().lower() not in own
        }
    )
