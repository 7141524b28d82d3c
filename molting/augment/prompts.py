"""What each request asks the generator for: built from the persona card, a topic taken from the
dataset's own user prompts, and a few of the persona's curated training replies as voice examples.

Every request is a pure function of (bundle, seed, request index): the language comes from a
smooth weighted round-robin over the persona's languages, the topic from a seeded shuffle of the
dataset's topics, the examples from a generator seeded with (seed, index). Held-out eval and
calibration prompts and references never appear in a request.

    >>> plan = Planner(persona.card, pairs, seed=0, shares={"en": 1.0, "pt": 1.0})
    >>> plan.request(0).lang, plan.request(1).lang
    ('en', 'pt')
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from molting.errors import ConfigError
from molting.io import sha256_json
from molting.metrics.fitdata import Pair
from molting.metrics.text import content_words, words
from molting.persona import Card
from molting.text.patterns import normalize

LANGUAGE_NAMES = {"en": "English", "pt": "Brazilian Portuguese (pt-BR)"}
EXAMPLES_PER_REQUEST = (
    3  # enough to show the voice; more makes copying likelier and requests dearer
)
EXAMPLE_MAX_WORDS = (
    120  # longer training replies are poor examples of a short-reply voice and cost tokens
)
TOPIC_WORDS = 3  # a topic is three content words of one of the dataset's user prompts
TOPIC_STEM = (
    5  # "commit"/"commits", "requisição"/"requisições" are one word (as in the topicality metric)
)
TOPIC_MIN_LETTERS = 3  # shorter words ("ok", "vc") are never a subject


@dataclass(frozen=True)
class Request:
    """One request to the generator. `sha256` identifies the exact prompt (system + user text)."""

    index: int
    lang: str
    topic: tuple[str, ...]
    examples: tuple[Pair, ...]
    system: str
    user: str

    @property
    def sha256(self) -> str:
        return sha256_json({"system": self.system, "user": self.user})

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


def language_schedule(shares: dict[str, float], count: int) -> list[str]:
    """Languages of the first `count` requests: every prefix is as close to `shares` as it can be
    (smooth weighted round-robin), so a run stopped early is still balanced.

    >>> language_schedule({"en": 0.5, "pt": 0.5}, 4)
    ['en', 'pt', 'en', 'pt']
    """
    current = {lang: 0.0 for lang in shares}
    out = []
    for _ in range(count):
        for lang, share in shares.items():
            current[lang] += share
        lang = max(current, key=lambda lg: (current[lg], -list(shares).index(lg)))
        current[lang] -= 1.0
        out.append(lang)
    return out


def topics(pairs: Sequence[Pair], size: int = TOPIC_WORDS) -> list[tuple[str, ...]]:
    """One topic per (prompt, reply) pair: `size` content words of the prompt, those the persona's
    reply also uses first (the subject both talk about), then the rarest over all prompts; in the
    prompt's word order. Prompts with too few words give none; repeated topics are dropped.

    >>> reply = "`git rebase -i`, then mark them squash."
    >>> topics([Pair("how do I squash commits in my repo", reply, "en")], 2)
    [('squash', 'commits')]
    """
    docs = []
    for pair in pairs:
        ws = [
            w
            for w in dict.fromkeys(content_words(pair.prompt))
            if len(w) >= TOPIC_MIN_LETTERS and w.isalpha()
        ]
        docs.append((ws, {_stem(w) for w in content_words(pair.reply)}))
    df = Counter(_stem(w) for ws, _ in docs for w in set(ws))
    out: dict[tuple[str, ...], None] = {}
    for ws, in_reply in docs:
        if len(ws) < size:
            continue
        best = set(
            sorted(ws, key=lambda w: (_stem(w) not in in_reply, df[_stem(w)], ws.index(w)))[:size]
        )
        out.setdefault(tuple(w for w in ws if w in best), None)
    return list(out)


def _stem(word: str) -> str:
    return normalize(word)[:TOPIC_STEM]


class Planner:
    """Builds request `i` for a persona: language, topic, examples and the prompt text."""

    def __init__(
        self,
        card: Card,
        pairs: Sequence[Pair],
        *,
        seed: int,
        shares: dict[str, float],
        count: int = 0,
    ):
        self.card, self.seed = card, seed
        self.pairs = [p for p in pairs if len(words(p.reply)) <= EXAMPLE_MAX_WORDS]
        if not self.pairs:
            raise ConfigError(
                "the persona's dataset has no curated replies to show as examples "
                "(every reply is agent talk or longer than "
                f"{EXAMPLE_MAX_WORDS} words)."
            )
        self.shares = shares
        self.schedule = language_schedule(shares, max(count, 1))
        self.topics = {lang: self._topics(lang) for lang in shares}

    def _topics(self, lang: str) -> list[tuple[str, ...]]:
        """The topics of the dataset's prompts in `lang` (all prompts if it has none), seeded
        order."""
        found = topics([p for p in self.pairs if p.lang == lang]) or topics(self.pairs)
        if not found:
            raise ConfigError("the persona's dataset has no user prompts to take topics from.")
        random.Random(f"{self.seed}/topics/{lang}").shuffle(found)
        return found

    def lang(self, index: int) -> str:
        if index >= len(self.schedule):
            self.schedule = language_schedule(self.shares, 2 * index + 1)
        return self.schedule[index]

    def request(self, index: int) -> Request:
        """Request `index`: its language's next topic (round-robin), examples seeded by (seed,
        index)."""
        lang = self.lang(index)
        pool = self.topics[lang]
        topic = pool[self.schedule[:index].count(lang) % len(pool)]
        examples = self._examples(lang, random.Random(f"{self.seed}/{index}"))
        return Request(
            index,
            lang,
            topic,
            examples,
            system_text(self.card, lang),
            user_text(self.card, lang, topic, examples),
        )

    def _examples(self, lang: str, rng: random.Random) -> tuple[Pair, ...]:
        """EXAMPLES_PER_REQUEST pairs in `lang` (topped up from the other languages if too few)."""
        same = [p for p in self.pairs if p.lang == lang]
        picked = rng.sample(same, min(EXAMPLES_PER_REQUEST, len(same)))
        if len(picked) < EXAMPLES_PER_REQUEST:
            others = [p for p in self.pairs if p.lang != lang]
            picked += rng.sample(others, min(EXAMPLES_PER_REQUEST - len(picked), len(others)))
        return tuple(picked)


def system_text(card: Card, lang: str) -> str:
    """The persona card as instructions: who, voice, never-list, signatures, languages."""
    lines = [
        f"You write training data for a chat model that must speak exactly like {card.name}.",
        f"Who {card.name} is: {card.summary}" if card.summary else "",
        f"Voice: {card.voice}" if card.voice else "",
    ]
    if card.never:
        lines.append(f"{card.name} never writes any of these:")
        lines += [f"- {item}" for item in card.never]
    signatures = card.signatures.get(lang, ())
    if signatures:
        quoted = ", ".join(f'"{s}"' for s in signatures)
        lines.append(
            f"{card.name}'s signature expressions in {LANGUAGE_NAMES[lang]}: {quoted}. "
            "Use at most one per reply, and only where it fits; many replies use none."
        )
    spoken = " and ".join(LANGUAGE_NAMES[lg] for lg in card.languages)
    lines.append(
        f"{card.name} speaks {spoken} and always replies in the language of the user's message."
    )
    return "\n".join(x for x in lines if x)


def user_text(card: Card, lang: str, topic: tuple[str, ...], examples: Sequence[Pair]) -> str:
    """The task: one new user message on `topic` in `lang`, the persona's reply, as a JSON
    object."""
    name, language = card.name, LANGUAGE_NAMES[lang]
    shown = "\n".join(
        f"[{k}] User: {one_line(p.prompt)}\n    {name}: {one_line(p.reply)}"
        for k, p in enumerate(examples, start=1)
    )
    return "\n".join(
        [
            (
                f"Write one new exchange for {name}'s training set: a message a real user sends to "
                f"{name}, and {name}'s reply."
            ),
            f"- Language: {language}, for both the user message and the reply.",
            (
                f"- Subject: something involving {', '.join(topic)} (keywords from {name}'s own "
                "chats); a new question in your own words."
            ),
            f"- The reply follows every voice rule above and sounds like {name}'s real replies "
            "below.",
            f"Real exchanges of {name}, for the voice only (do not copy or paraphrase them):",
            shown,
            (
                'Answer with one JSON object and nothing else: {"user": "<the user\'s message>", '
                f'"reply": "<{name}\'s reply>"}}'
            ),
        ]
    )


def one_line(text: str) -> str:
    return " ".join(text.split())
