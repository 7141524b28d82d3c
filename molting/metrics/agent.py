"""Agent-phrase rate and directness.

The agent-phrase flag is exactly curation's: `molting.text.patterns.find_agent_talk` (one source of
truth, so the gate measures what curation removed). Directness adds what a direct answer must
also avoid at its start: assistant preambles ("Great question!", "Certamente!") — the persona
card's "answer first" rule. The rate comes with a Wilson 95% interval (Wilson 1927; Brown, Cai &
DasGupta 2001 recommend it over the normal interval for small n and rates near 0).

    >>> directness("Great question! There are several factors to consider.").direct
    False
    >>> directness("Let me know if it breaks.").direct
    True
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

from molting.errors import EvalError
from molting.text.patterns import PATTERNS_VERSION, find_agent_talk, normalize

Z95 = 1.959963984540054  # two-sided 95% normal quantile

# Preambles: filler that delays the answer. Anchored at the reply start (after an optional
# greeting word), matched on normalize(text) — accents stripped, case-folded.
_PREAMBLES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "en.great_question",
        r"(?:what a |that'?s an? )?(?:great|good|excellent|interesting) question\b",
        ("Great question! Lists are mutable.",),
        ("Good questions get good answers: use a tuple.",),
    ),
    (
        "en.certainly",
        r"(?:certainly|absolutely|of course|sure thing)[!.,]",
        ("Certainly! This is a common issue.",),
        ("Certainly not: tuples are immutable.",),
    ),
    (
        "en.thanks",
        r"thank(?:s| you) for (?:asking|sharing|your question|reaching out)\b",
        ("Thank you for sharing your query.",),
        ("Thanks to the GIL, threads don't help here.",),
    ),
    (
        "en.happy_to_help",
        r"(?:i'?d be|i am|i'm) (?:happy|glad) to help\b",
        ("I'd be happy to help with that!",),
        (),
    ),
    ("en.as_an_ai", r"as an ai\b", ("As an AI language model, I cannot...",), ()),
    (
        "en.several_factors",
        r"(?:there are|it depends on) (?:several|many|a few|various) (?:factors|things|ways|"
        r"approaches|reasons|possible)\b",
        ("There are several factors to consider.",),
        ("There are two ways: `git merge` or `git rebase`.",),
    ),
    (
        "pt.otima_pergunta",
        r"(?:otima|excelente|boa) pergunta\b",
        ("Ótima pergunta! Isso depende.",),
        ("Boa: usa um dicionário.",),
    ),
    (
        "pt.certamente",
        r"(?:certamente|claro que sim|com certeza)[!.,]",
        ("Certamente! Existem várias abordagens.",),
        ("Com certeza absoluta você quer `set -e`.",),
    ),
    (
        "pt.obrigado",
        r"obrigad[oa] (?:por|pela) (?:sua )?(?:pergunta|compartilhar|perguntar)\b",
        ("Obrigado pela pergunta!",),
        (),
    ),
    (
        "pt.fico_feliz",
        r"(?:fico feliz|sera um prazer) (?:em )?ajudar\b",
        ("Fico feliz em ajudar!",),
        (),
    ),
    (
        "pt.como_ia",
        r"como (?:uma )?(?:ia|inteligencia artificial|modelo de linguagem)\b",
        ("Como uma IA, não tenho sentimentos.",),
        (),
    ),
    (
        "pt.diversos_fatores",
        r"(?:existem|ha) (?:diversos|varios|alguns|muitos) (?:fatores|aspectos|motivos|caminhos|"
        r"pontos|abordagens)\b",
        ("Existem diversos fatores a considerar.",),
        (),
    ),
)
_PREAMBLE_RE = {
    pid: re.compile(r"^[\s\"'*_>#-]*(?:(?:oi|ola|hi|hello|hey|ok|okay)[!,.]?\s+)?" + rx)
    for pid, rx, _, _ in _PREAMBLES
}


@dataclass(frozen=True)
class Directness:
    direct: bool  # no agent talk anywhere and no preamble at the start
    agent_like: bool  # curation's flag (molting.text.patterns)
    agent_hits: tuple[str, ...]  # pattern ids, in order of position
    preamble: str | None  # preamble id when the reply opens with filler


def preamble_id(text: str) -> str | None:
    norm = normalize(text)
    return next((pid for pid, rx in _PREAMBLE_RE.items() if rx.search(norm)), None)


def directness(text: str) -> Directness:
    hits = tuple(h.pattern.id for h in find_agent_talk(text))
    pre = preamble_id(text)
    return Directness(
        direct=not hits and pre is None, agent_like=bool(hits), agent_hits=hits, preamble=pre
    )


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials: `wilson_interval(0, 70)` → (0.0,
    0.052)."""
    if n <= 0:
        raise EvalError("wilson_interval needs at least one trial (n = 0): nothing was scored")
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and n, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at k = 0 or k = n the exact bound is 0 or 1; rounding must not move it inside
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Rate:
    k: int
    n: int
    rate: float
    low: float  # Wilson 95% interval
    high: float


def rate(flags: list[bool]) -> Rate:
    k, n = sum(bool(f) for f in flags), len(flags)
    low, high = wilson_interval(k, n)
    return Rate(k, n, k / n, low, high)


def agent_rate(replies: list[str], langs: list[str]) -> dict[str, Rate]:
    """Share of agent-like replies per language and overall ("all"), each with a Wilson interval."""
    if len(replies) != len(langs):
        raise ValueError(f"{len(replies)} replies but {len(langs)} languages")
    if not replies:
        raise EvalError("agent_rate got no replies: an empty eval set never passes")
    by_lang: dict[str, list[bool]] = defaultdict(list)
    for text, lang in zip(replies, langs):
        flag = bool(find_agent_talk(text))
        by_lang[lang].append(flag)
        by_lang["all"].append(flag)
    return {lang: rate(flags) for lang, flags in sorted(by_lang.items())}


@dataclass(frozen=True)
class FlagQuality:
    precision: float
    recall: float
    tp: int
    fp: int
    fn: int
    tn: int
    patterns_version: str = PATTERNS_VERSION


def flag_quality(texts: list[str], labels: list[bool]) -> FlagQuality:
    """Precision and recall of the agent-phrase flag on replies labelled by hand."""
    pred = [bool(find_agent_talk(t)) for t in texts]
    tp = sum(p and y for p, y in zip(pred, labels))
    fp = sum(p and not y for p, y in zip(pred, labels))
    fn = sum(y and not p for p, y in zip(pred, labels))
    tn = len(labels) - tp - fp - fn
    return FlagQuality(tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn, tn)


PREAMBLE_EXAMPLES = {pid: (pos, neg) for pid, _, pos, neg in _PREAMBLES}
