"""Does the reply answer THIS prompt — not merely talk about its subject?

Every held-out prompt carries the persona's own reply (the reference). A reply that answers the
same question shares its specifics with the reference — the command, the cause, the number —
while a good reply to a neighbouring question on the same subject does not. Measured with
independent authors' replies on the Cláudio calibration prompts (AUC, replies to this question
vs replies to a neighbouring one): prompt-side similarity, however normalised, reaches 0.72–0.84;
reference-side similarity reaches 0.99. So, per reply:

    s = cos_tfidf(reply, reference) + key-term recall(reference → reply)

- cos_tfidf: character 3–5-gram TF-IDF cosine (language-agnostic; carries Portuguese, which
  the English-only MiniLM does not);
- key-term recall: the IDF-weighted share of the reference's content-word stems that the reply
  uses (IDF over the persona's own texts, so the persona's everyday words weigh little).

`s` is mapped to a soft gate in [0, 1] per language by two anchors fitted on calibration
replies: with hand-written replies to this and to neighbouring questions (`in_voice` /
`off_topic` in the calibration file), off-topic median ↦ 0 and the lower of on-topic q0.05 and
off-topic q0.9 ↦ 1; without them,
from the persona's replies to other questions alone: their median ↦ 0, their ON_TOPIC_FROM_NEGATIVES
quantile ↦ 1 (a reply must be closer to the reference than nearly every reply to another question).

A reply can share much with the reference and still answer a neighbouring question, and a good
answer to this question can take another route than the reference. So the gate also asks which
answer the reply is closest to: the persona's answers to other questions (the bundle's other
references and the training replies, "competitors"), and

    margin = c(reference) − max c(competitor),   c = cos_tfidf + weighted Dice of key terms

(Dice, not recall: a short competitor's few key terms are covered by any reply on its subject,
which made one-line answers rivals of everything. Development set, other voices' on-topic replies
to the Cláudio calibration prompts: margin < 0 11% → 8%, hand-written off-topic ones 68% → 68%;
reported, not tuned on: the persona-init Marina bundle's new-author replies 11% → 5%, every
near-miss reply still gated.)

A reply closer to another question's answer (margin < 0) loses credit linearly, all of it at
margin −MARGIN_SCALE. Measured on new authors' replies to the Cláudio calibration prompts: 4–5%
of on-topic replies have margin < 0, 65–70% of same-subject off-topic ones. Competitors whose
question is a paraphrase of this prompt (MiniLM cosine ≥ PARAPHRASE) are left out: answering the
same question is no evidence of answering another; nor is a competitor that is the reply itself
(the calibration controls reuse the persona's answers as replies). With the margin doing that part,
the on-topic anchor can sit where hand-written off-topic replies end (their OFF_TOPIC_HIGH quantile)
instead of at near-paraphrases of the reference.

Both measures read the reference's specifics, and an open question has none to share: asked
"do you have a hobby?", the persona told of surfing, a new author of cooking and cycling, and
that answer is closer to the persona's answer about making feijoada than to the reference. Such
replies, in voice and correct, were the gate's largest source of zeroes (it made 22 of the 23
zeroes of correct replies by new authors over four personas, most to small talk and follow-up
questions). So a reply to an open question (no code in the prompt or in the reference:
`open_question`) that the gate cuts is asked a second question (`answers_prompt`), by a
multilingual retrieval model (multilingual-e5-small, `embeddings.Retriever`) that embeds
questions and answers apart, so that an answer lies near the question it answers, in English and
Portuguese alike: does the reply answer its prompt at least as well as the persona's reference
does, and better than it answers any other question the persona answered (the competitors'
questions, paraphrases of the prompt left out)? If so, it is on topic. No threshold to tune.
Development sets (Cláudio's calibration prompts; replies cut below half credit): on-topic
replies 17 → 12 of 248, hand-written off-topic ones 34 → 32 of 44 still cut. Validation
(`bench/bench_validity.py`, four personas, read once): the persona's own correct replies zeroed
23 → 19 of 958; hand-written off-topic replies to Cláudio's eval prompts keep their means (EN
2.92 → 3.00, PT 1.88 → 1.94; target ≤ 4).

Why only open questions: asked of every cut reply, the model also gave full credit to the demo
models' on-subject but wrong code answers ("To fix this bug, remove the `key` parameter from
`startswith`") and to a Portuguese reply looping on `print(line)` (base personality 1.25 →
2.06): where the reference holds commands and code, sharing them is the evidence that counts.
Asked of open questions only, it gives credit back to the candidate's small talk (games,
movies, a move) and keeps "as a chatbot, I can't…" off topic (base 1.25 → 1.61, candidate
0.85 → 1.78, then 1.64 once a near-repeated sentence counted as a loop).

The retrieval model alone is no topical gate: it ranks on-topic above off-topic replies to the
same prompt less well than the lexical measures (AUC 0.82–0.85 for its relevance gain over the
reference, against 0.93–0.96). Adding that gain into s (5 ×, chosen on the development sets)
raised the pooled AUC of s from 0.92 / 0.93 to 0.95 / 0.95 (EN / PT, validation) but cost 2–3
points of Cláudio's in-voice Portuguese pass rate, and the model would read every reply (5
replies a second on one core): measured, not adopted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from molting.metrics.text import code_spans, content_words
from molting.text.patterns import normalize

STEM = 5  # "configura", "configuração", "configurado": one key term
ON_TOPIC_QUANTILE = (
    0.05  # two-sided: full credit from the on-topic 5th percentile (the 95% pass target) …
)
OFF_TOPIC_HIGH = (
    0.9  # … or from where 90% of hand-written off-topic replies stay below, whichever is lower
)
ON_TOPIC_FROM_NEGATIVES = (
    0.98  # one-sided: full credit above this quantile of replies to other questions
)
SAME_PROMPT = 0.95  # prompts this similar (cos, MiniLM) count as the same question
PARAPHRASE = 0.85  # competitors whose question is this similar to the prompt are not competitors
MARGIN_SCALE = 0.1  # closer to another question's answer by this much: no topical credit
# A reference with fewer key terms than this (small talk: "Happy birthday! Take the day off.")
# has no specifics for a reply to share: similarity to it is no evidence, so the gate abstains
# and only the margin (closer to another question's answer) can cut.
MIN_KEY_TERMS = 5


def open_question(prompt: str, reference: str) -> bool:
    """No code in the prompt or in the persona's answer to it: small talk, advice, opinions —
    questions whose right answers need not share the reference's specifics."""
    return not code_spans(prompt) and not code_spans(reference or "")


def answers_prompt(own: float, reference: float, others: np.ndarray) -> bool:
    """The retrieval model's verdict: the reply's relevance to its prompt (`own`) is at least the
    persona's reference's (`reference`) and above its relevance to every other question
    (`others`; none: that part holds)."""
    return own >= reference and (len(others) == 0 or own > float(np.max(others)))


def stems(text: str) -> set[str]:
    return {normalize(w)[:STEM] for w in content_words(text)}


@dataclass(frozen=True)
class Competitor:
    """The persona's answer to some question: a reply to another prompt should not be closer to
    it."""

    lang: str
    prompt: str
    text: str


def _vectorizer(vocabulary: dict[str, int] | None = None):
    """Character 3–5-grams of the normalized text: the space replies and references meet in."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(3, 5),
        sublinear_tf=True,
        preprocessor=normalize,
        dtype=np.float64,
        vocabulary=vocabulary,
    )


class Topicality:
    """Fitted once per persona: the TF-IDF space, the IDF of content-word stems, and the
    competitors."""

    def __init__(self, corpus: list[str], competitors: list[Competitor] = ()):
        self.tfidf = _vectorizer().fit(corpus)
        df = Counter(s for t in corpus for s in stems(t))
        self.n_docs = len(corpus)
        self.df = df
        self.competitors = list(competitors)
        self._rivals: dict[str, tuple] = {}

    @classmethod
    def from_state(
        cls,
        vocabulary: dict[str, int],
        idf: np.ndarray,
        df: Counter,
        n_docs: int,
        competitors: list[Competitor] = (),
    ) -> Topicality:
        self = cls.__new__(cls)
        self.tfidf = _vectorizer(vocabulary)
        self.tfidf.idf_ = idf
        self.df, self.n_docs = df, n_docs
        self.competitors = list(competitors)
        self._rivals = {}
        return self

    def _rivals_in(self, lang: str) -> tuple:
        """(competitors, their TF-IDF rows, key-term stems, stem weights) of one language, built
        once."""
        if lang not in self._rivals:
            comp = [c for c in self.competitors if c.lang == lang]
            ref_stems = [stems(c.text) for c in comp]
            matrix = self.tfidf.transform([c.text for c in comp]) if comp else None
            self._rivals[lang] = (comp, matrix, ref_stems, [self._weight(r) for r in ref_stems])
        return self._rivals[lang]

    def margins(
        self,
        replies: list[str],
        references: list[str],
        prompts: list[str],
        langs: list[str],
        paraphrase: Callable[[list[str], list[str]], np.ndarray],
    ) -> list[float | None]:
        """closeness(reply, its reference) − the best competitor's, per reply (None: no
        competitor in that language). `paraphrase(prompts, competitor prompts)` → cosine matrix
        of the questions."""
        own = self.closeness(replies, references)
        return [
            None if r is None else float(own[i] - r[0])
            for i, r in enumerate(self.rivals(replies, prompts, langs, paraphrase))
        ]

    def closeness(self, replies: list[str], answers: list[str]) -> np.ndarray:
        """How close each reply is to one answer, the same both ways: TF-IDF cosine + the
        weighted Dice overlap of their key terms. Recall (`score`) favours short answers, whose
        few key terms any reply on the subject covers; the margin compares answers with this."""
        return self._cosines(replies, answers) + np.array(
            [self._dice(stems(x), stems(y)) for x, y in zip(replies, answers)]
        )

    def _cosines(self, replies: list[str], answers: list[str]) -> np.ndarray:
        """TF-IDF cosine of each reply with its answer."""
        if not replies:
            return np.zeros(0)
        r, a = self.tfidf.transform(replies), self.tfidf.transform(answers)
        return np.asarray(r.multiply(a).sum(1)).ravel()

    def _dice(
        self, a: set[str], b: set[str], weight_a: float | None = None, weight_b: float | None = None
    ) -> float:
        """Weighted Dice overlap of two key-term sets (their weights passed when already known)."""
        shared = a & b
        if not shared:
            return 0.0
        weight_a = self._weight(a) if weight_a is None else weight_a
        weight_b = self._weight(b) if weight_b is None else weight_b
        return 2 * self._weight(shared) / (weight_a + weight_b)

    def rivals(
        self,
        replies: list[str],
        prompts: list[str],
        langs: list[str],
        paraphrase: Callable[[list[str], list[str]], np.ndarray],
    ) -> list[tuple[float, Competitor] | None]:
        """Per reply, the competitor it is closest to and its s (None: no competitor in that
        language): the question the reply may answer instead of its own (reports show it)."""
        out: list[tuple[float, Competitor] | None] = [None] * len(replies)
        for lang in sorted(set(langs)):
            comp, cm, ref_stems, ref_weight = self._rivals_in(lang)
            idx = [i for i, lg in enumerate(langs) if lg == lang]
            if not comp or not idx:
                continue
            cos = (self.tfidf.transform([replies[i] for i in idx]) @ cm.T).toarray()
            same = paraphrase([prompts[i] for i in idx], [c.prompt for c in comp]) >= PARAPHRASE
            for row, i in enumerate(idx):
                mine = stems(replies[i])
                my_weight = self._weight(mine)
                best, at = -np.inf, -1
                for j, c in enumerate(comp):
                    # a paraphrase of the prompt, an answer with too few key terms to be evidence
                    # (as for the reference: MIN_KEY_TERMS), or the reply itself: no rival
                    if same[row, j] or len(ref_stems[j]) < MIN_KEY_TERMS or c.text == replies[i]:
                        continue
                    s = cos[row, j] + self._dice(mine, ref_stems[j], my_weight, ref_weight[j])
                    if s > best:
                        best, at = s, j
                if at >= 0:
                    out[i] = (float(best), comp[at])
        return out

    def _idf(self, stem: str) -> float:
        return math.log((self.n_docs + 1) / (self.df.get(stem, 0) + 1)) + 1

    def _weight(self, key_terms: set[str]) -> float:
        # sorted: a set's order changes with the string hash seed, and float sums with the order
        return sum(self._idf(s) for s in sorted(key_terms))

    def recall(self, reference: str, reply: str) -> float:
        """IDF-weighted share of the reference's key terms the reply uses."""
        ref = stems(reference)
        if not ref:
            return 0.0
        return self._weight(stems(reply) & ref) / self._weight(ref)

    def score(self, replies: list[str], references: list[str]) -> np.ndarray:
        """s per reply: TF-IDF cosine with its reference + key-term recall (each in [0, 1])."""
        return self._cosines(replies, references) + np.array(
            [self.recall(b, a) for a, b in zip(replies, references)]
        )


@dataclass(frozen=True)
class TopicalAnchor:
    """s ↦ gate in [0, 1]: `low` ↦ 0, `high` ↦ 1, linear in between. `fitted_on` says from what."""

    low: float
    high: float
    fitted_on: str  # "hand-written replies" | "replies to other questions"

    def gate(self, s: float, margin: float | None = None, key_terms: int | None = None) -> float:
        """Credit in [0, 1] for similarity `s` to the reference, less when the reply is closer to
        another question's answer (`margin` < 0; None: no competitors, no penalty). With fewer
        than MIN_KEY_TERMS `key_terms` in the reference, similarity is no evidence: full credit.
        (A reply cut here that `answers_prompt` gets full credit: the Scorer asks.)"""
        if key_terms is not None and key_terms < MIN_KEY_TERMS:
            g = 1.0
        elif self.high <= self.low:
            g = float(s >= self.high)
        else:
            g = min(1.0, max(0.0, (s - self.low) / (self.high - self.low)))
        if margin is not None and margin < 0:
            g *= max(0.0, 1.0 + margin / MARGIN_SCALE)
        return float(g)

    @classmethod
    def fit(cls, on: list[float], off: list[float], negatives: list[float]) -> TopicalAnchor:
        """Two-sided from hand-written on/off-topic replies when there are enough, else one-sided
        from the persona's replies to other questions."""
        if len(on) >= 5 and len(off) >= 5:
            high = min(
                float(np.quantile(on, ON_TOPIC_QUANTILE)), float(np.quantile(off, OFF_TOPIC_HIGH))
            )
            return cls(float(np.median(off)), high, "hand-written replies")
        return cls(
            float(np.median(negatives)),
            float(np.quantile(negatives, ON_TOPIC_FROM_NEGATIVES)),
            "replies to other questions",
        )
