"""What the persona metric is fitted on, from the bundle and the packaged persona-free sets.

- persona: the assistant turns of the bundle's dataset that curation's patterns keep (the
  persona's real voice), labelled with the language of their conversation (detected on the
  user and assistant turns). Conversations whose user prompt near-duplicates a calibration or
  eval prompt are dropped (decontamination).
- agent: the assistant turns curation's patterns flag (kept for the report; agent talk is a gate
  of the score, not a style feature).
- generic: generic-assistant replies: the bundle's negatives/generic.jsonl and the packaged
  persona-free set (molting/metrics/data/generic.jsonl), split deterministically into a
  training part (the style classifier) and a calibration part (the anchors).
- impostor: other voices (molting.metrics.impostors): the packaged corpus and the bundle's
  negatives/impostor.jsonl, split the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from molting.data import load_dataset
from molting.io import read_jsonl, sha256_file
from molting.metrics.impostors import impostor_rows
from molting.metrics.language import LanguageIdentifier, conversation_language
from molting.metrics.text import NearDuplicates
from molting.persona import Persona, normalize_lang
from molting.text.patterns import is_agent_like

PACKAGED = Path(__file__).with_name("data")
CALIBRATION_SHARE = 0.25  # of each generic set, held out of training for the anchors


@dataclass(frozen=True)
class Pair:
    """A (user prompt, persona reply) pair of the training data, with its language."""

    prompt: str
    reply: str
    lang: str


@dataclass(frozen=True)
class TrainSplit:
    texts: list[str]
    labels: list[int]  # 1 = persona, 0 = generic or impostor
    langs: list[str]
    kinds: list[str]  # "persona" | "generic" | "impostor"
    voices: list[str]  # the impostor's voice id, "" for the other kinds
    pairs: list[Pair]  # persona replies with their prompts (topicality's pool, near-miss negatives)
    agent: list[tuple[str, str]]  # (reply, lang) flagged by curation's patterns
    calibration_generic: list[dict] = field(default_factory=list)  # [{"lang", "reply", "prompt"}]
    calibration_impostor: list[dict] = field(
        default_factory=list
    )  # [{"voice", "lang", "reply", "prompt"}]
    dropped_contaminated: int = 0
    conversation_langs: dict[str, int] = field(default_factory=dict)

    def without_voices(self, voices: set[str]) -> tuple[list[str], list[int]]:
        """(texts, labels) with the given impostor voices left out (cross-fitting)."""
        keep = [i for i, v in enumerate(self.voices) if v not in voices]
        return [self.texts[i] for i in keep], [self.labels[i] for i in keep]

    def of(self, kind: str, lang: str | None = None) -> list[str]:
        return [
            t
            for t, k, lg in zip(self.texts, self.kinds, self.langs)
            if k == kind and (lang is None or lg == lang)
        ]


@cache
def packaged(kind: str) -> tuple[dict, ...]:
    """The packaged persona-free replies of one kind ("generic" or "agent")."""
    rows = read_jsonl(PACKAGED / f"{kind}.jsonl", f"packaged {kind} set")
    return tuple(
        {
            "id": r["id"],
            "lang": normalize_lang(r["lang"], str(PACKAGED / kind)),
            "prompt": r.get("prompt", ""),
            "reply": r["reply"],
        }
        for r in rows
    )


def packaged_fingerprint() -> str:
    files = sorted(p for p in PACKAGED.rglob("*") if p.suffix in (".jsonl", ".yaml", ".tsv"))
    return hashlib.sha256("".join(sha256_file(p) for p in files).encode()).hexdigest()[:16]


def is_calibration_row(key: str) -> bool:
    """A fixed ~CALIBRATION_SHARE of rows, chosen by a hash of their text: never used in
    training."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < CALIBRATION_SHARE


def train_split(persona: Persona, lang_id: LanguageIdentifier) -> TrainSplit:
    held = NearDuplicates(
        [p.prompt for p in persona.eval_prompts() + persona.calibration_prompts()]
    )
    texts, labels, langs, kinds, voices, pairs, agent = [], [], [], [], [], [], []
    dropped, conv_langs = 0, {}
    for conv in load_dataset(persona.dataset).conversations:
        users = [t.content for t in conv.turns if t.role == "user"]
        if any(held.find(u) for u in users):
            dropped += 1
            continue
        lang = conversation_language(conv, lang_id, persona.languages)
        conv_langs[lang] = conv_langs.get(lang, 0) + 1
        for i, t in enumerate(conv.turns):
            if t.role != "assistant":
                continue
            if is_agent_like(t.content):
                agent.append((t.content, lang))
                continue
            (
                texts.append(t.content),
                labels.append(1),
                langs.append(lang),
                kinds.append("persona"),
                voices.append(""),
            )
            prev = next((u.content for u in reversed(conv.turns[:i]) if u.role == "user"), "")
            if prev:
                pairs.append(Pair(prev, t.content, lang))
    calibration: dict[str, list[dict]] = {"generic": [], "impostor": []}
    generic = [
        *persona.negatives("generic"),
        *(r for r in packaged("generic") if r["lang"] in persona.languages),
    ]
    for kind, rows in (("generic", generic), ("impostor", impostor_rows(persona))):
        for row in rows:
            if is_calibration_row(row["reply"]):
                calibration[kind].append(row)
            else:
                (
                    texts.append(row["reply"]),
                    labels.append(0),
                    langs.append(row["lang"]),
                    kinds.append(kind),
                )
                voices.append(row.get("voice", ""))
    return TrainSplit(
        texts,
        labels,
        langs,
        kinds,
        voices,
        pairs,
        agent,
        calibration["generic"],
        calibration["impostor"],
        dropped,
        conv_langs,
    )
