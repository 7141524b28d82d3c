"""Personality score (0–10): does this reply sound like the persona, answer this prompt, in
the right language — as the persona card describes?

Design (sources):
- Style-transfer evaluation credits a reply only if it is in style AND fluent AND on content,
  because averaged metrics are easy to game (Krishna, Wieting & Iyyer 2020, EMNLP — the J
  metric); here: style × topical × language/variety gates.
- PersonaGym (arXiv 2407.18416) scores adherence against a rubric; here the rubric is the card:
  answer first (no preamble, no agent talk — gates), the user's language, Brazilian not
  European Portuguese for pt-BR, at most one signature expression.
- Surface cues are easy to game (Krishna et al.), so: signature expressions are masked before
  the style classifier and add at most SIGNATURE_BONUS, only in proportion to how much the rest
  of the reply already sounds like the persona; agent talk is a gate, not a style feature, so
  ordinary words ("I'll", "first", "primeiro") cost nothing outside agent constructions; and
  topicality is measured against the prompt's nearest neighbouring questions, so a good reply
  to another question on the same subject does not pass.

Per reply:
    style     = P(persona | reply) — TF-IDF character, word and distorted-text n-grams and the
                reply's shape (length, how it ends, marks per sentence) + logistic regression,
                fitted on the persona's own replies vs generic-assistant replies and other voices,
                signature expressions masked
    base      = W_STYLE·style + W_DIRECT·[no generic preamble]
    anchored  = base mapped so the calibration generic median ↦ 2 and the calibration
                references' REFERENCE_QUANTILE ↦ ANCHORED_MAX (clipped to [0, ANCHORED_MAX])
    score     = (anchored + bonus) · topical · variety · stuffing, or 0 for degenerate /
                wrong-language replies and × AGENT_FACTOR for agent talk
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from molting.metrics.text import (
    STOPWORDS,
    code_spans,
    code_tokens,
    content_words,
    sentences,
    words,
)
from molting.text.patterns import normalize

# Weights of the base score (fixed from the card's rules, checked on calibration only).
W_STYLE = 0.7  # the learned voice
W_DIRECT = 0.3  # "the first sentence is the answer": no assistant preamble
ANCHORED_MAX = 9.6  # the voice alone reaches 9.6; a signature expression can add the last 0.4
SIGNATURE_BONUS = (
    0.4  # the card's "at most one" signature expression: under half a point on the same reply
)
STUFFED_AT = 3  # this many signature expressions in one reply is stuffing, not voice
STUFFED_FACTOR = 0.5  # a stuffed reply keeps half its score and no bonus
AGENT_FACTOR = (
    0.1  # the card's never-list: agent talk keeps a tenth (order among bad replies stays)
)
# Another voice's catchphrase or a phrase the card's never-list quotes: this is someone else
# talking. A reply in full voice (9.6) drops to 5.8, well under the pass line.
FOREIGN_FACTOR = 0.6
CHAR_NGRAMS = (2, 5)
WORD_NGRAMS = (1, 2)  # words and word pairs, punctuation marks as tokens: "—", ":", "!" are habits
WORD_TOKEN = r"(?u)\b\w+\b|[^\w\s]"
# Text distortion (Stamatatos 2017, "Authorship attribution using text distortion", EACL): every
# word but the function words becomes "*", digits "#", code spans "`c`" — what is left is how
# the persona writes (function words, punctuation, rhythm), not what the reply is about.
DISTORTED_NGRAMS = (1, 4)
_LETTERS = re.compile(r"[^\W\d_]+")
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_FUNCTION_WORDS = frozenset(normalize(w) for w in STOPWORDS)


def distort(norm: str) -> str:
    """`distort("usa `x` em 2 passos")` → 'usa `c` em # *' (input already normalized)."""
    masked = _LETTERS.sub(
        lambda m: m.group(0) if m.group(0) in _FUNCTION_WORDS else "*", _CODE_SPAN.sub("`c`", norm)
    )
    return re.sub(r"\d+", "#", masked)


STYLE_C = 4.0  # inverse regularisation of the style classifier (sklearn's C)
# The reply's shape (shape_features): only the persona's habits count, the features that alone
# tell its training replies from the negatives with AUC ≥ SHAPE_HABIT_AUC (or ≤ 1 − it): a
# persona who closes nearly every reply with a question (Helena: 0.98) or keeps them short
# (Marina: 0.20 for length in words). None of Cláudio's reaches it (his strongest: sentence count,
# 0.24), so his model is as before: shape features that are no habit only move replies on the
# pass line both ways. Kept features are standardised on the training replies, clipped to
# ±SHAPE_CLIP standard deviations and scaled by SHAPE_WEIGHT beside the TF-IDF blocks (each row of
# unit length). The weight was chosen on the development sets (tests/data/metric_dev: new
# authors' in-voice replies vs other voices on the calibration prompts, AUC EN / PT, all features
# kept): without shape Cláudio 0.615 / 0.648, Helena 0.984 / 0.906; 0.05 → 0.612 / 0.660 and
# 1.000 / 0.999, and no higher weight does better (0.1 → 0.605 / 0.667 and 1.000 / 1.000; 0.3 →
# 0.588 / 0.673 and 1.000 / 1.000): the smallest weight that carries the gain.
SHAPE_WEIGHT = 0.05
SHAPE_HABIT_AUC = 0.8
SHAPE_CLIP = 4.0
# Degenerate outputs (gate "degenerate"): fragments, echoes of the prompt, loops.
FRAGMENT_FLOOR = 3  # never fewer words than this, whatever the persona's replies look like
FRAGMENT_MIN = 2  # a single word is a fragment even with a full stop
# A colon or a semicolon announces more: none of 4,181 human-written replies in the repository ends
# with one, and "Jeito mais simples:" with nothing after it is a reply cut before its code.
COMPLETE_ENDINGS = ".!?…)]\"'`”»"
FRAGMENT_SHARE = (
    0.4  # … else a reply shorter than 40% of the persona's short (q0.05) replies is a fragment
)
ECHO_NEW_SHARE = 0.34  # an echo brings fewer than a third of new content words to the prompt's
LOOP_MIN_CHARS = 80  # compression needs some text to say anything
LOOP_RATIO_MARGIN = 0.7  # a loop compresses to < 70% of the persona's most compressible reply
# A sentence of this many words and code tokens said twice, word for word, is a loop however
# short the reply: none of 4,181 human-written replies in the repository (the three personas'
# datasets, the validation and development sets, the packaged impostor and generic sets) does it,
# and a generation that does ("`postgres://…` is the one you want." twice) compresses too little
# for the ratio and repeats too few words for fluency's repetition to see it.
REPEATED_SENTENCE_MIN = 4
# … or said again with a word or two added ("`SELECT …` is faster. `SELECT …` is faster too.",
# the demo candidate's ev-en-009, 9.60 before): none of 4,368 human-written replies does that
# with up to three added words either.
REPEATED_SENTENCE_EXTRA = 2


def signature_regex(expressions: list[str]) -> re.Pattern[str] | None:
    """One regex for the persona's signature expressions, matched on normalize(text), taking the
    punctuation that follows each expression with it (a masked ':' must not become a feature)."""
    alts = sorted(
        {re.escape(normalize(e).strip().rstrip(":,.!;—–-")) for e in expressions if e.strip()},
        key=len,
        reverse=True,
    )
    alts = [a for a in alts if a]
    if not alts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)[ \t]*[:,.!;—–-]*")


_QUOTED = re.compile(r'"([^"\n]{2,80})"|“([^”\n]{2,80})”')


def never_phrases(never: tuple[str, ...]) -> list[str]:
    """The phrases a card's never-list quotes: 'Filler ("Great question!", "Let me check…")' →
    ['Great question!', 'Let me check']. Unquoted prose is the reader's guide, not a pattern."""
    out = []
    for item in never:
        for m in _QUOTED.finditer(item):
            phrase = (m.group(1) or m.group(2)).strip().rstrip("…").removesuffix("...").strip()
            if len(normalize(phrase).split()) >= 1 and len(phrase) >= 3:
                out.append(phrase)
    return out


def foreign_phrases(phrases: list[str], own_replies: list[str], ordinary: list[str]) -> list[str]:
    """The phrases that are evidence of someone else talking: expressions of two words or more
    that neither the persona's own replies nor ordinary writing (`ordinary`: generic replies)
    use. "Next." or "going to" is everyday language; "Missão dada, missão cumprida" is a voice."""
    multi = [p for p in phrases if len(normalize(p).split()) >= 2]
    rx = signature_regex(multi)
    if rx is None:
        return []

    def key(t):
        return t.strip().rstrip(":,.!;—–-").strip()

    used = {key(m.group(0)) for r in [*own_replies, *ordinary] for m in rx.finditer(normalize(r))}
    return sorted({p for p in multi if key(normalize(p)) not in used})


def count_signatures(regex: re.Pattern[str] | None, text: str) -> int:
    return len(regex.findall(normalize(text))) if regex else 0


SHAPE_NAMES = (
    "log_words",
    "log_sentences",
    "words_per_sentence",
    "code_share",
    "fenced_block",
    "log_code_spans",
    "ends_with_question",
    "exclamations_per_sentence",
    "dashes_per_sentence",
    "parentheses_per_sentence",
    "colons_per_sentence",
    "log_line_breaks",
    "questions_per_sentence",
    "pictograph",
    "digit_share",
    "commas_per_word",
    "semicolons_per_sentence",
    "lower_case_start",
)


def shape_features(text: str) -> list[float]:
    """How the reply is built, whatever it is about: length in words and sentences, sentence
    length, code, how it ends (a question back to the user is a habit TF-IDF n-grams cannot
    place), and the rate of marks a writer reaches for (!, —, (, :, ;, ?, commas), line breaks,
    pictographs, digits, a lower-case start. TF-IDF rows have unit length, so they say how a reply
    writes, never how long it is or where in it a mark falls."""
    ws, code, sents = words(text), code_tokens(text), sentences(text)
    n_sent = max(1, len(sents))
    n_words = max(1, len(ws))
    stripped = text.strip()
    return [
        float(np.log1p(len(ws))),
        float(np.log1p(len(sents))),
        len(ws) / n_sent,
        len(code) / (len(code) + n_words),
        float("```" in text),
        float(np.log1p(len(code_spans(text)))),
        float(stripped.endswith("?")),
        text.count("!") / n_sent,
        text.count("—") / n_sent,
        text.count("(") / n_sent,
        text.count(":") / n_sent,
        float(np.log1p(text.count("\n"))),
        text.count("?") / n_sent,
        float(any(unicodedata.category(c) == "So" for c in text)),
        sum(c.isdigit() for c in text) / max(1, len(text)),
        text.count(",") / n_words,
        text.count(";") / n_sent,
        float(stripped[:1].islower()),
    ]


# Calibration fits the style model several times on the same texts (cross-fitting) and scores them
# again: a reply's shape and its text without signatures are computed once per process.
SHAPE_MEMO = 1 << 15


@lru_cache(maxsize=SHAPE_MEMO)
def _prep_shape(signatures: re.Pattern[str] | None, text: str) -> str:
    out = re.sub(r"[ \t]+", " ", cut_signatures(signatures, text)).strip()
    if text.lstrip()[:1].isupper():
        out = out[:1].upper() + out[1:]
    return out


@lru_cache(maxsize=SHAPE_MEMO)
def _shape_row(text: str) -> tuple[float, ...]:
    return tuple(shape_features(text))


class ShapeVectorizer:
    """The persona's shape habits (shape_features, SHAPE_HABIT_AUC) as a sparse block beside the
    TF-IDF ones: standardised on the fitted texts, clipped, scaled by SHAPE_WEIGHT; no columns at
    all when the persona has no habit. `prep` takes the signature expressions out first."""

    def __init__(self, prep, keep=None, mean=None, scale=None):
        self.prep, self.keep_, self.mean_, self.scale_ = prep, keep, mean, scale

    def _raw(self, texts: list[str]) -> np.ndarray:
        rows = [_shape_row(self.prep(t)) for t in texts]
        return np.array(rows, dtype=np.float64).reshape(len(texts), len(SHAPE_NAMES))

    def fit_transform(self, texts: list[str], labels: list[int]):
        from sklearn.metrics import roc_auc_score

        raw = self._raw(texts)
        aucs = [roc_auc_score(labels, raw[:, j]) for j in range(raw.shape[1])]
        habit = [j for j, a in enumerate(aucs) if a >= SHAPE_HABIT_AUC or a <= 1 - SHAPE_HABIT_AUC]
        self.keep_ = np.array(habit, dtype=np.int64)
        kept = raw[:, self.keep_]
        self.mean_, self.scale_ = kept.mean(0), kept.std(0) + 1e-9
        return self._scaled(raw)

    def transform(self, texts: list[str]):
        return self._scaled(self._raw(texts))

    def habits(self) -> list[str]:
        return [SHAPE_NAMES[j] for j in self.keep_]

    def _scaled(self, raw: np.ndarray):
        from scipy.sparse import csr_matrix

        z = np.clip((raw[:, self.keep_] - self.mean_) / self.scale_, -SHAPE_CLIP, SHAPE_CLIP)
        return csr_matrix(z * SHAPE_WEIGHT)


class StyleClassifier:
    """TF-IDF character n-grams, word/punctuation n-grams and character n-grams of the distorted
    text, and the reply's shape, + logistic regression; signature expressions masked out.
    Characters carry spelling and punctuation habits, words the persona's phrasing, the distorted
    text its rhythm whatever the subject, the shape what n-grams cannot place (a persona who
    closes every reply with a question); all fitted on the persona against generic replies and
    other voices."""

    def __init__(self, signatures: re.Pattern[str] | None):
        self.signatures = signatures

    def prep(self, text: str) -> str:
        norm = normalize(text)
        return self.signatures.sub(" ", norm) if self.signatures else norm

    def prep_distorted(self, text: str) -> str:
        return distort(self.prep(text))

    def prep_shape(self, text: str) -> str:
        """The reply as written (case, accents, line breaks) without its signature expressions;
        a reply that opened with a capital still does once its opening expression is cut."""
        return _prep_shape(self.signatures, text)

    def _vectorizers(self, vocabularies: tuple[dict, ...] | None = None) -> tuple:
        from sklearn.feature_extraction.text import TfidfVectorizer

        chars, words_, distorted = vocabularies or (None, None, None)
        common = dict(min_df=2, sublinear_tf=True, dtype=np.float64)
        return (
            TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=CHAR_NGRAMS,
                vocabulary=chars,
                preprocessor=self.prep,
                **common,
            ),
            TfidfVectorizer(
                analyzer="word",
                ngram_range=WORD_NGRAMS,
                token_pattern=WORD_TOKEN,
                vocabulary=words_,
                preprocessor=self.prep,
                **common,
            ),
            TfidfVectorizer(
                analyzer="char",
                ngram_range=DISTORTED_NGRAMS,
                vocabulary=distorted,
                preprocessor=self.prep_distorted,
                **common,
            ),
        )

    def fit(self, texts: list[str], labels: list[int]) -> StyleClassifier:
        from scipy.sparse import hstack
        from sklearn.linear_model import LogisticRegression

        self.vecs = self._vectorizers()
        self.shape = ShapeVectorizer(self.prep_shape)
        shape = self.shape.fit_transform(texts, labels)
        x = hstack([v.fit_transform(texts) for v in self.vecs] + [shape])
        x = x.tocsr()
        # lbfgs on a fixed matrix is deterministic; balanced: classes differ in size
        self.clf = LogisticRegression(C=STYLE_C, class_weight="balanced", max_iter=5000).fit(
            x, labels
        )
        return self

    def proba(self, texts: list[str]) -> np.ndarray:
        from scipy.sparse import hstack

        blocks = [v.transform(texts) for v in self.vecs] + [self.shape.transform(texts)]
        return self.clf.predict_proba(hstack(blocks).tocsr())[:, 1]

    # -------------------------------------------------------------- stored form (no pickle)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        vocabs = [{k: int(i) for k, i in v.vocabulary_.items()} for v in self.vecs]
        arrays = {"coef": self.clf.coef_, "intercept": self.clf.intercept_}
        arrays |= {f"idf{i}": v.idf_ for i, v in enumerate(self.vecs)}
        arrays |= {
            "shape_keep": self.shape.keep_,
            "shape_mean": self.shape.mean_,
            "shape_scale": self.shape.scale_,
        }
        return {"vocabularies": vocabs}, arrays

    @classmethod
    def from_state(
        cls, signatures: re.Pattern[str] | None, meta: dict, arrays: dict[str, np.ndarray]
    ) -> StyleClassifier:
        from sklearn.linear_model import LogisticRegression

        self = cls(signatures)
        self.vecs = self._vectorizers(tuple(meta["vocabularies"]))
        for i, v in enumerate(self.vecs):
            v.idf_ = arrays[f"idf{i}"]
        self.shape = ShapeVectorizer(
            self.prep_shape, arrays["shape_keep"], arrays["shape_mean"], arrays["shape_scale"]
        )
        self.clf = LogisticRegression(C=STYLE_C, class_weight="balanced")
        self.clf.coef_, self.clf.intercept_ = arrays["coef"], arrays["intercept"]
        self.clf.classes_ = np.array([0, 1])
        self.clf.n_features_in_ = arrays["coef"].shape[1]
        return self


# ---------------------------------------------------------------- degenerate replies


@dataclass(frozen=True)
class DegenerateRule:
    """Thresholds fitted on the persona's own references (calibration)."""

    min_words: int  # fewer words: a fragment
    loop_ratio: float  # compressing to below this share of its size: a loop

    @classmethod
    def fit(cls, references: list[str]) -> DegenerateRule:
        lengths = [reply_length(r) for r in references]
        ratios = [compression_ratio(r) for r in references if len(r) >= LOOP_MIN_CHARS]
        min_words = max(FRAGMENT_FLOOR, int(FRAGMENT_SHARE * float(np.quantile(lengths, 0.05))))
        loop_ratio = LOOP_RATIO_MARGIN * (min(ratios) if ratios else 0.5)
        return cls(min_words, round(loop_ratio, 4))


def reply_length(text: str) -> int:
    """Prose words plus code tokens: a reply that is mostly a command is an answer, not a
    fragment."""
    return len(words(text)) + len(code_tokens(text))


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(zlib.compress(data, 9)) / max(1, len(data))


def is_complete(reply: str) -> bool:
    """The reply ends where a writer ends: a sentence mark, a closing bracket or quote, code."""
    tail = reply.rstrip()
    return bool(tail) and (tail[-1] in COMPLETE_ENDINGS or tail.endswith("```"))


_CLOSED_FENCE = re.compile(r"```.*?```", re.DOTALL)


def open_code(reply: str) -> bool:
    """The reply leaves code open: an odd number of fences, or, outside fenced blocks, an odd
    number of backticks ("`sudo cat /proc/$(pgrep"). None of 4,181 human-written replies in the
    repository does either."""
    return bool(reply.count("```") % 2) or _CLOSED_FENCE.sub(" ", reply).count("`") % 2 == 1


def degenerate_kind(
    reply: str, prompt: str, rule: DegenerateRule, repetition_value: float
) -> str | None:
    """'fragment', 'echo', 'loop' or None. `repetition_value` is fluency.repetition(reply).value.
    A short reply is a fragment only when it stops mid-sentence: "Happy birthday." and
    "`git branch --show-current`." are whole answers. A reply of any length that stops inside
    code (a fence or an inline span left open, no ending) was cut off mid-answer, as a
    generation is at its token limit; none of 4,521 human-written replies in the repository's
    datasets and validation sets has an odd number of fences."""
    n = reply_length(reply)
    if n < FRAGMENT_MIN or (n < rule.min_words and not is_complete(reply)):
        return "fragment"
    if open_code(reply) and not is_complete(reply):  # cut off inside code
        return "fragment"
    if _is_echo(reply, prompt):
        return "echo"
    if (
        repetition_value < 0.5
        or (len(reply) >= LOOP_MIN_CHARS and compression_ratio(reply) < rule.loop_ratio)
        or repeats_a_sentence(reply)
    ):
        return "loop"
    return None


def repeats_a_sentence(reply: str) -> bool:
    """A sentence of REPEATED_SENTENCE_MIN words and code tokens or more occurs again, word for
    word (case, accents, spacing and its closing mark aside) or inside a sentence at most
    REPEATED_SENTENCE_EXTRA words longer: "`x` is the one. `x` is the one too." → True."""
    said: list[list[str]] = []
    for sentence in sentences(reply):
        if reply_length(sentence) < REPEATED_SENTENCE_MIN:
            continue
        mine = normalize(sentence).rstrip(" .!?…").split()
        if any(_within(a, mine) or _within(mine, a) for a in said):
            return True
        said.append(mine)
    return False


def _within(short: list[str], long: list[str]) -> bool:
    """`short`, word for word, inside `long`, which has at most REPEATED_SENTENCE_EXTRA more."""
    extra = len(long) - len(short)
    return 0 <= extra <= REPEATED_SENTENCE_EXTRA and any(
        long[k : k + len(short)] == short for k in range(extra + 1)
    )


def _stem(word: str) -> str:
    return normalize(word)[:5]


def _is_echo(reply: str, prompt: str) -> bool:
    """The reply says back what the prompt said: few content words the prompt did not have.
    Code the prompt does not show counts as new, token by token: "`while read -r l || [ -n "$l" ]`
    pega a última linha" to "e a última linha?" brings a command, and rewritten code an answer."""
    said = {_stem(w) for w in content_words(prompt)}
    shown = {" ".join(span) for span in code_spans(prompt)}
    mine = [_stem(w) not in said for w in content_words(reply)] + [
        " ".join(span) not in shown for span in code_spans(reply) for _ in span
    ]
    if len(mine) < 2 or not (said or shown):
        return False
    new = sum(mine)
    return new / len(mine) < ECHO_NEW_SHARE


# ---------------------------------------------------------------- combination


def base_score(style: float, direct: bool) -> float:
    return W_STYLE * style + W_DIRECT * float(direct)


def combine(
    anchored: float,
    signatures: int,
    topical: float,
    variety: float,
    *,
    lang_ok: bool,
    degenerate: bool,
    agent: bool,
    foreign: bool = False,
) -> float:
    """Krishna et al.'s conjunction: hard zero for degenerate or wrong-language replies, soft
    gates where the evidence is graded (topicality, Brazilian vs European variety)."""
    if degenerate or not lang_ok:
        return 0.0
    stuffed = signatures >= STUFFED_AT
    bonus = SIGNATURE_BONUS * anchored / ANCHORED_MAX if signatures >= 1 and not stuffed else 0.0
    score = (anchored + bonus) * topical * variety * (STUFFED_FACTOR if stuffed else 1.0)
    score *= (AGENT_FACTOR if agent else 1.0) * (FOREIGN_FACTOR if foreign else 1.0)
    return float(min(10.0, max(0.0, score)))


def strip_signatures(regex: re.Pattern[str] | None, text: str) -> str:
    """The reply with its signature expressions taken out (catchphrase-effect checks):
    `strip_signatures(rx, "Short answer: tuple.")` → 'Tuple.'"""
    if regex is None:
        return text
    out = " ".join(cut_signatures(regex, text).split())
    for i, ch in enumerate(out):
        if ch.isalpha():
            return out[:i] + ch.upper() + out[i + 1 :]
    return out


def cut_signatures(regex: re.Pattern[str] | None, text: str) -> str:
    """The reply with its signature expressions cut out and nothing else touched (line breaks and
    case stay)."""
    if regex is None:
        return text
    index = _norm_index(text)
    keep, last = [], 0
    for m in regex.finditer(normalize(text)):
        keep.append(text[last : index[m.start()]])
        last = index[m.end()] if m.end() < len(index) else len(text)
    keep.append(text[last:])
    return "".join(keep)


def _norm_index(text: str) -> list[int]:
    """index[i] = position in `text` of normalized character i (one extra entry for the end)."""
    index: list[int] = []
    for i, ch in enumerate(text):
        index.extend([i] * len(normalize(ch)))
    return index + [len(text)]
