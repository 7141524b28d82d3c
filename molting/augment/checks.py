"""The quality gate on every generated example: parse it, then keep it or give a reason code.

Reason codes, in the order a rejection is named by (every failing check is recorded):

    parse_error     the generator's text holds no JSON object {"user": text, "reply": text}
    empty           the user message or the reply is blank
    agent_talk      curation's patterns flag the reply (preambles, planning, tool narration)
    language        the reply (or the user message) is not in the requested language
    near_duplicate  the user message near-duplicates a training, eval or calibration prompt or an
                    accepted example; or the reply one of the examples shown, a held-out reference
                    or an accepted reply (5-gram Jaccard, molting.metrics.text.NearDuplicates)
    persona_score   personality, without topicality, below the threshold (see `persona_score`)

Why no topicality: the scorer's personality multiplies the voice by a topical gate measured
against the prompt's held-out reference reply. A generated example has no reference — its own
reply would be a reference that always matches — so the gate scores what needs none: the style
classifier and directness (anchored on calibration like the gate's score), signature stuffing,
Brazilian-vs-European variety, wrong language, agent talk and degenerate replies (fragments,
echoes of the generated user message, loops). Whether the reply answers its own question is
left to the generator; the score is the persona metric with its topical factor set to 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from molting.metrics.scorer import LANG_MATCH_MIN, Scorer
from molting.metrics.text import NearDuplicates
from molting.persona import Prompt
from molting.text.patterns import find_agent_talk

PARSE_ERROR, EMPTY, AGENT_TALK, LANGUAGE, NEAR_DUPLICATE, PERSONA_SCORE = (
    "parse_error",
    "empty",
    "agent_talk",
    "language",
    "near_duplicate",
    "persona_score",
)
REASONS = (PARSE_ERROR, EMPTY, AGENT_TALK, LANGUAGE, NEAR_DUPLICATE, PERSONA_SCORE)
QUOTE_CHARS = 200  # matched texts are quoted this far in the audit
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder(strict=False)  # models put raw newlines inside JSON strings


@dataclass(frozen=True)
class Example:
    user: str
    reply: str


@dataclass(frozen=True)
class Verdict:
    reason: str | None  # None = accepted; else the first failing check in REASONS order
    failed: tuple[str, ...] = ()  # every failing check
    detail: dict = field(default_factory=dict)  # per check: what it found
    personality: float | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


class ParseError(ValueError):
    pass


def parse_example(text: str) -> Example:
    """The first JSON object with string 'user' and 'reply' in `text` (code fences and chatter
    around it are fine). Raises ParseError saying what was wrong.

    >>> parse_example('Sure!\\n```json\\n{"user": "Hi?", "reply": "Oi!"}\\n```')
    Example(user='Hi?', reply='Oi!')
    """
    seen_object = False
    for chunk in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        for obj in _json_objects(chunk):
            seen_object = True
            if isinstance(obj, dict) and "user" in obj and "reply" in obj:
                if not isinstance(obj["user"], str) or not isinstance(obj["reply"], str):
                    raise ParseError("'user' and 'reply' must be strings")
                return Example(obj["user"].strip(), obj["reply"].strip())
    if seen_object:
        raise ParseError("no JSON object with both 'user' and 'reply'")
    raise ParseError("no JSON object found" if text.strip() else "the generator returned no text")


def _json_objects(text: str) -> Iterator[object]:
    start = text.find("{")
    while start != -1:
        try:
            obj, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        yield obj
        start = text.find("{", end)


def persona_score(scorer: Scorer, prompt: Prompt, reply: str) -> tuple[float, dict]:
    """Personality (0–10) of `reply` to `prompt` with the topical factor at 1 (a generated
    example answers its own prompt, which has no reference to compare with), combined by the
    scorer exactly as `Scorer.score` does."""
    s = scorer.from_raw(prompt, reply, scorer.raw([prompt], [reply])[0], topical=1.0)
    keep = ("style", "anchored", "signatures", "foreign", "degenerate", "variety", "in_language")
    parts = {k: round(v, 4) if isinstance(v, float) else v for k, v in s.parts.items() if k in keep}
    return s.personality, {"direct": s.direct, **parts}


class QualityChecks:
    """Checks generated examples for one persona. `accept` adds an example to the duplicate
    pools."""

    def __init__(self, scorer: Scorer, min_personality: float, training_prompts: Sequence[str]):
        persona = scorer.persona
        held = {"eval": persona.eval_prompts(), "calibration": persona.calibration_prompts()}
        self.scorer, self.min_personality = scorer, min_personality
        self.prompt_pools = {
            "training prompt": NearDuplicates(list(training_prompts)),
            **{f"{k} prompt": NearDuplicates([p.prompt for p in v]) for k, v in held.items()},
            "accepted example": NearDuplicates([]),
        }
        self.reply_pools = {
            **{f"{k} reference": NearDuplicates([p.reference for p in v]) for k, v in held.items()},
            "accepted example": NearDuplicates([]),
        }

    def check(
        self, text: str, lang: str, shown: Sequence[str] = (), pid: str = "generated"
    ) -> tuple[Example | None, Verdict]:
        """Parse the generator's `text` and run every check; `shown` are the replies the request
        showed."""
        try:
            ex = parse_example(text)
        except ParseError as err:
            reason = EMPTY if not text.strip() else PARSE_ERROR
            return None, Verdict(reason, (reason,), {reason: str(err)})
        if not ex.user or not ex.reply:
            return ex, Verdict(
                EMPTY, (EMPTY,), {EMPTY: "blank " + ("user message" if not ex.user else "reply")}
            )
        detail: dict = {}
        hits = find_agent_talk(ex.reply)
        if hits:
            detail[AGENT_TALK] = {
                "patterns": sorted({h.pattern.id for h in hits}),
                "match": hits[0].match,
            }
        score, parts = persona_score(self.scorer, Prompt(pid, lang, ex.user, ex.reply), ex.reply)
        wrong = self._language(ex, lang, parts["in_language"])
        if wrong:
            detail[LANGUAGE] = wrong
        dup = self._duplicate(ex, shown)
        if dup:
            detail[NEAR_DUPLICATE] = dup
        if score < self.min_personality:
            detail[PERSONA_SCORE] = {"personality": score, "min": self.min_personality, **parts}
        failed = tuple(r for r in REASONS if r in detail)
        return ex, Verdict(failed[0] if failed else None, failed, detail, score)

    def _language(self, ex: Example, lang: str, reply_share: float) -> dict | None:
        """The first turn (the reply, then the user's) that is not in `lang`, or None."""
        off = self._off_language("reply", ex.reply, lang, reply_share)
        if off is None:
            share = self.scorer.lang_id.share(ex.user, lang, self.scorer.persona.languages)
            off = self._off_language("user", ex.user, lang, share)
        return off

    def _off_language(self, turn: str, text: str, lang: str, share: float) -> dict | None:
        if share >= LANG_MATCH_MIN:
            return None
        detected = self.scorer.lang_id.detect(text)
        return {
            "turn": turn,
            "expected": lang,
            "in_language": round(share, 4),
            "detected": detected,
        }

    def _duplicate(self, ex: Example, shown: Sequence[str]) -> dict | None:
        pools = [("user", name, nd) for name, nd in self.prompt_pools.items()]
        pools += [("reply", "example shown", NearDuplicates(list(shown)))]
        pools += [("reply", name, nd) for name, nd in self.reply_pools.items()]
        for turn, name, nd in pools:
            match = nd.find(ex.user if turn == "user" else ex.reply)
            if match is not None:
                return {"turn": turn, "of": name, "text": match[:QUOTE_CHARS]}
        return None

    def accept(self, ex: Example) -> None:
        self.prompt_pools["accepted example"].add(ex.user)
        self.reply_pools["accepted example"].add(ex.reply)
