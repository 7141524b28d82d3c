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
`off_topic` in the calibration file), off-topic median ↦ 0 and on-topic q0.1 ↦ 1; without them,
from the persona's replies to other questions alone: their median ↦ 0, their ON_TOPIC_FROM_NEGATIVES
quantile ↦ 1 (a reply must be closer to the reference than nearly every reply to another question).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from molting.curate.patterns import normalize
from molting.metrics.text import content_words

STEM = 5  # "configura", "configuração", "configurado": one key term
ON_TOPIC_QUANTILE = 0.05  # two-sided: full credit from the on-topic 5th percentile (the 95% pass target)
ON_TOPIC_FROM_NEGATIVES = 0.98  # one-sided: full credit above this quantile of replies to other questions
SAME_PROMPT = 0.95  # prompts this similar (cos, MiniLM) count as the same question


def stems(text: str) -> set[str]:
    return {normalize(w)[:STEM] for w in content_words(text)}


class Topicality:
    """Fitted once per persona: the TF-IDF space and the IDF of content-word stems."""

    def __init__(self, corpus: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                     preprocessor=normalize, dtype=np.float64).fit(corpus)
        df = Counter(s for t in corpus for s in stems(t))
        self.n_docs = len(corpus)
        self.df = df

    @classmethod
    def from_state(cls, vocabulary: dict[str, int], idf: np.ndarray, df: Counter, n_docs: int) -> Topicality:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self = cls.__new__(cls)
        self.tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                     preprocessor=normalize, dtype=np.float64, vocabulary=vocabulary)
        self.tfidf.idf_ = idf
        self.df, self.n_docs = df, n_docs
        return self

    def _idf(self, stem: str) -> float:
        return math.log((self.n_docs + 1) / (self.df.get(stem, 0) + 1)) + 1

    def recall(self, reference: str, reply: str) -> float:
        """IDF-weighted share of the reference's key terms the reply uses."""
        ref = stems(reference)
        if not ref:
            return 0.0
        got = stems(reply) & ref
        # sorted: a set's order changes with the string hash seed, and float sums with the order
        return sum(self._idf(s) for s in sorted(got)) / sum(self._idf(s) for s in sorted(ref))

    def score(self, replies: list[str], references: list[str]) -> np.ndarray:
        """s per reply: TF-IDF cosine with its reference + key-term recall (each in [0, 1])."""
        if not replies:
            return np.zeros(0)
        r, ref = self.tfidf.transform(replies), self.tfidf.transform(references)
        cos = np.asarray(r.multiply(ref).sum(1)).ravel()
        return cos + np.array([self.recall(b, a) for a, b in zip(replies, references)])


@dataclass(frozen=True)
class TopicalAnchor:
    """s ↦ gate in [0, 1]: `low` ↦ 0, `high` ↦ 1, linear in between. `fitted_on` says from what."""

    low: float
    high: float
    fitted_on: str  # "hand-written replies" | "replies to other questions"

    def gate(self, s: float) -> float:
        if self.high <= self.low:
            return float(s >= self.high)
        return float(min(1.0, max(0.0, (s - self.low) / (self.high - self.low))))

    @classmethod
    def fit(cls, on: list[float], off: list[float], negatives: list[float]) -> TopicalAnchor:
        """Two-sided from hand-written on/off-topic replies when there are enough, else one-sided
        from the persona's replies to other questions."""
        if len(on) >= 5 and len(off) >= 5:
            return cls(float(np.median(off)), float(np.quantile(on, ON_TOPIC_QUANTILE)), "hand-written replies")
        return cls(float(np.median(negatives)), float(np.quantile(negatives, ON_TOPIC_FROM_NEGATIVES)),
                   "replies to other questions")
