"""Curation: drop examples whose assistant turns talk like an agent, and exact duplicates.

A datatrove-style filter: every example gets keep or a reason code; counters per reason; every
removed example is written to the rejected file with its hits (turn, pattern id, matched span,
language) and its original record — nothing is just discarded. Streams: memory stays flat
apart from one 16-byte digest per kept example for duplicate detection.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from molting.data import Conversation, to_record
from molting.text.patterns import PATTERNS_VERSION, Hit, find_agent_talk, normalize

DUPLICATE = (
    "dup.exact"  # reason code for an exact duplicate (after normalisation) of a kept example
)


@dataclass(frozen=True)
class Decision:
    conversation: Conversation
    reason: str | None  # None = keep; a pattern id or DUPLICATE
    hits: tuple[tuple[int, Hit], ...] = ()  # (turn index, hit), every assistant-turn hit

    @property
    def kept(self) -> bool:
        return self.reason is None


@dataclass
class CurationStats:
    """Counters filled while streaming; `as_dict()` is the machine-readable stats JSON."""

    total: int = 0
    kept: int = 0
    reasons: Counter = field(default_factory=Counter)  # primary reason per removed example
    hits: Counter = field(default_factory=Counter)  # examples hit per pattern (any turn)
    categories: Counter = field(default_factory=Counter)  # primary category per removed example
    languages: Counter = field(default_factory=Counter)  # language of the primary hit
    overlaps: Counter = field(
        default_factory=Counter
    )  # "a + b" for examples hit by several patterns
    kept_languages: Counter = field(default_factory=Counter)
    kept_multi_turn: int = 0
    samples: dict = field(default_factory=dict)  # pattern id → first example it removed

    def add(self, d: Decision, lang: str | None = None) -> None:
        """Count one decision (`lang`: its `guess_language`, when the caller has it)."""
        self.total += 1
        if d.kept:
            self.kept += 1
            self.kept_languages[lang or guess_language(d.conversation)] += 1
            self.kept_multi_turn += len(d.conversation.assistant_turns()) > 1
            return
        self.reasons[d.reason] += 1
        if d.reason == DUPLICATE:
            self.categories["duplicate"] += 1
            self.languages[lang or guess_language(d.conversation)] += 1
            return
        ids = sorted({h.pattern.id for _, h in d.hits})
        self.hits.update(ids)
        if len(ids) > 1:
            self.overlaps[" + ".join(ids)] += 1
        primary = d.hits[0][1]
        self.categories[primary.pattern.category] += 1
        self.languages[primary.pattern.lang] += 1
        for turn, h in d.hits:
            if h.pattern.id not in self.samples:
                self.samples[h.pattern.id] = {
                    "id": d.conversation.id,
                    "turn": turn,
                    "match": h.match,
                }

    def merge(self, later: CurationStats) -> None:
        """Add the counts of the conversations that came after these (samples: the first one
        wins)."""
        self.total += later.total
        self.kept += later.kept
        self.kept_multi_turn += later.kept_multi_turn
        for name in ("reasons", "hits", "categories", "languages", "overlaps", "kept_languages"):
            getattr(self, name).update(getattr(later, name))
        for pid, sample in later.samples.items():
            self.samples.setdefault(pid, sample)

    def kept_to_duplicate(self, lang: str, multi_turn: bool) -> None:
        """A conversation counted as kept turned out to duplicate an earlier kept one."""
        self.kept -= 1
        self.kept_multi_turn -= multi_turn
        self.kept_languages[lang] -= 1
        if not self.kept_languages[lang]:
            del self.kept_languages[lang]
        self.reasons[DUPLICATE] += 1
        self.categories["duplicate"] += 1
        self.languages[lang] += 1

    def as_dict(self) -> dict[str, Any]:
        removed = self.total - self.kept
        return {
            "patterns_version": PATTERNS_VERSION,
            "total": self.total,
            "kept": self.kept,
            "removed": removed,
            "removed_agent": removed - self.reasons.get(DUPLICATE, 0),
            "removed_duplicate": self.reasons.get(DUPLICATE, 0),
            "change_pct": round(-100.0 * removed / self.total, 1) if self.total else 0.0,
            "removed_by_reason": dict(sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "examples_hit_by_pattern": dict(
                sorted(self.hits.items(), key=lambda kv: (-kv[1], kv[0]))
            ),
            "removed_by_category": dict(
                sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))
            ),
            "removed_by_language": dict(sorted(self.languages.items())),
            "overlaps": dict(sorted(self.overlaps.items(), key=lambda kv: (-kv[1], kv[0]))),
            "kept_by_language": dict(sorted(self.kept_languages.items())),
            "kept_multi_turn": self.kept_multi_turn,
            "samples": dict(sorted(self.samples.items())),
        }


def assess(conv: Conversation) -> tuple[tuple[tuple[int, Hit], ...], bytes | None]:
    """(every assistant-turn hit, and when there is none the duplicate-detection digest)."""
    norms = {turn: normalize(text) for turn, text in conv.assistant_turns()}
    hits = tuple(
        (turn, h)
        for turn, norm in norms.items()
        for h in find_agent_talk(conv.turns[turn].content, norm=norm)
    )
    return hits, None if hits else _digest(conv, norms)


def decide(conv: Conversation, seen: set[bytes]) -> Decision:
    """Keep, or drop with the reason: the earliest agent-talk hit, else an exact duplicate."""
    hits, digest = assess(conv)
    if hits:
        return Decision(conv, hits[0][1].pattern.id, hits)
    if digest in seen:
        return Decision(conv, DUPLICATE)
    seen.add(digest)
    return Decision(conv, None)


def curate(conversations: Iterable[Conversation]) -> Iterator[Decision]:
    """Decide every conversation in order (a generator: streams)."""
    seen: set[bytes] = set()
    for conv in conversations:
        yield decide(conv, seen)


def _digest(conv: Conversation, norms: dict[int, str]) -> bytes:
    """Hash of the roles and normalized, whitespace-collapsed texts (`norms`: turns already
    normalized)."""
    h = hashlib.blake2b(digest_size=16)
    for i, t in enumerate(conv.turns):
        norm = norms[i] if i in norms else normalize(t.content)
        h.update(t.role.encode() + b"\x00" + " ".join(norm.split()).encode() + b"\x01")
    return h.digest()


# A cheap stopword vote, enough to label the report's language columns (the metrics use a real
# language identifier). Portuguese wins ties only with Portuguese-only function words present.
_PT_WORDS = frozenset(
    "não você voce que uma pra para com isso está esta mais mas também tambem porque é são".split()
)
_EN_WORDS = frozenset("the and you that with this is are it's for not but what your have".split())


def _whole_words(words: frozenset[str]) -> re.Pattern[str]:
    """Whitespace-separated tokens equal to one of `words` once ".,:;!?()" is stripped from their
    edges — counted by the regex engine instead of a Python loop over every token."""
    alternatives = "|".join(sorted(map(re.escape, words), key=lambda w: (-len(w), w)))
    return re.compile(rf"(?<!\S)[.,:;!?()]*(?:{alternatives})[.,:;!?()]*(?!\S)")


_PT_RX, _EN_RX = _whole_words(_PT_WORDS), _whole_words(_EN_WORDS)


def guess_language(conv: Conversation) -> str:
    text = " ".join(t.content for t in conv.turns).lower()
    return "pt" if len(_PT_RX.findall(text)) > len(_EN_RX.findall(text)) else "en"


def rejected_record(d: Decision, schema: str) -> dict[str, Any]:
    """One line of the rejected file: why, where, and the original record."""
    hits = [
        {
            "turn": turn,
            "pattern": h.pattern.id,
            "category": h.pattern.category,
            "lang": h.pattern.lang,
            "span": [h.start, h.end],
            "match": h.match,
        }
        for turn, h in d.hits
    ]
    return rejected_row(
        d.conversation.index, d.conversation.id, d.reason, hits, to_record(d.conversation, schema)
    )


def rejected_row(
    index: int, cid: str, reason: str, hits: list[dict], record: dict[str, Any]
) -> dict[str, Any]:
    return {"index": index, "id": cid, "reason": reason, "hits": hits, "record": record}
