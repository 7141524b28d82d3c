"""Language of a reply or a conversation: lingua restricted to a few candidate languages.

The language is judged on the whole prose with code spans removed — never on fragments
("Quer testar antes?" alone reads as Spanish; inside its reply it is Portuguese). A reply
counts as wrong-language only on evidence: the whole prose is in another language, or long
sentences are confidently in another of the persona's languages.

    >>> LanguageIdentifier().share("Roda isso aqui: `make test`. Quer testar antes?", "pt")
    1.0
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property

from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException
from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

from molting.data import Conversation
from molting.errors import ConfigError
from molting.metrics.text import code_tokens, sentences, strip_code, words

CANDIDATES = ("en", "pt", "es", "it", "fr")  # languages a small model drifts into
DETECTORS = ("lingua", "langdetect")
SHORT_PROSE_WORDS = (
    8  # below this, lingua's pt/es call is a coin toss: only a confident other call counts
)
SHORT_PROSE_CONFIDENCE = 0.7  # … "confident" for short prose
LONG_SENTENCE_WORDS = 8  # a sentence this long in another persona language is real code-switching
JUDGED_SENTENCE_WORDS = (
    4  # shorter sentences ("Roda `make`.", "Pronto.") say nothing about their language
)
NAMES_AT_MOST = 0.5  # taking names out must leave at least this share of the prose's words
_WORD_START = re.compile(r"(?<![\w'’-])[^\W\d_][\w'’-]*")
_ENGLISH_I = re.compile(r"I(?:['’](?:m|ll|ve|d))?")


def without_names(prose: str) -> str:
    """The prose with its names and identifiers taken out: a capitalised word that does not open
    its sentence ("Actions", "Postgres", "CI"), or any word with a capital inside ("GitHub"),
    names a product, a place or a person, a word with a digit in it ("arm64-v8a") is an
    identifier written outside backticks, and neither is in any language. "GitHub Actions se o
    código tá no GitHub" reads as Spanish with the names and as Portuguese without them. English
    "I" stays; prose that is mostly names ("Alejandro: Alejandro: …") is kept whole.

    >>> " ".join(without_names("Use GitLab CI se tá no GitLab.").split())
    'Use se tá no .'
    """
    kept = []
    for sentence in sentences(prose):
        first = True

        def name_out(m: re.Match) -> str:
            nonlocal first
            word, opens = m.group(0), first
            first = False
            if any(c.isdigit() for c in word):
                return " "  # "arm64-v8a", "utf8", "x86_64": an identifier, in no language
            if _ENGLISH_I.fullmatch(word) or not word[0].isupper():
                return word
            if opens and not any(c.isupper() for c in word[1:]):
                return word  # "Use", "Olha": a sentence's first word; "GitHub", "CI": names
            return " "

        kept.append(_WORD_START.sub(name_out, sentence))
    masked = "\n".join(kept)
    # names around prose are noise; names that are most of it are all there is to judge
    return masked if len(words(masked)) >= NAMES_AT_MOST * len(words(prose)) else prose


class LanguageIdentifier:
    """Language ID restricted to `candidates`; `backend` is "lingua" (default) or "langdetect"."""

    def __init__(self, backend: str = "lingua", candidates: tuple[str, ...] = CANDIDATES):
        if backend not in DETECTORS:
            raise ConfigError(
                f"unknown language detector {backend!r}; choose one of {', '.join(DETECTORS)}"
            )
        self.backend, self.candidates = backend, tuple(candidates)

    @cached_property
    def _lingua(self):

        langs = [
            Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in self.candidates
        ]
        return (
            LanguageDetectorBuilder.from_languages(*langs).with_preloaded_language_models().build()
        )

    def detect(self, text: str) -> str:
        """ISO 639-1 code of the most likely candidate for the prose of `text` (code and names
        left out), or "unknown"."""
        return self._detect(without_names(strip_code(text)))

    def confidence(self, text: str) -> dict[str, float]:
        """Candidate → confidence (sums to 1) on the prose of `text` (lingua only)."""
        return self._confidence(without_names(strip_code(text)))

    def _detect(self, prose: str) -> str:
        """`detect` on prose whose code and names are already out."""
        prose = " ".join(prose.split())
        if not prose:
            return "unknown"
        if self.backend == "lingua":
            lang = self._lingua.detect_language_of(prose)
            return lang.iso_code_639_1.name.lower() if lang is not None else "unknown"
        return self._langdetect(prose)

    def _confidence(self, prose: str) -> dict[str, float]:
        """`confidence` on prose whose code and names are already out."""
        prose = " ".join(prose.split())
        if not prose or self.backend != "lingua":
            return {}
        return {
            c.language.iso_code_639_1.name.lower(): c.value
            for c in self._lingua.compute_language_confidence_values(prose)
        }

    def _langdetect(self, prose: str) -> str:

        DetectorFactory.seed = 0  # langdetect samples; without a seed the same text can flip
        try:
            ranked = detect_langs(prose)
        except LangDetectException:
            return "unknown"
        inside = [r.lang for r in ranked if r.lang in self.candidates]
        return inside[0] if inside else "unknown"

    def share(self, text: str, lang: str, others: Iterable[str] = ("en", "pt")) -> float:
        """How much of the prose is in `lang`, in [0, 1] (0.0 when there is no prose, 1.0 when
        there is only code).

        The whole prose decides first. If it is in `lang`, long sentences confidently in one of
        `others` (the persona's other languages) are taken out of the share. If it is not, the
        share is the word share of sentences that are in `lang`. Short prose is only called
        wrong on a confident detection. Names are neither words nor evidence (`without_names`)."""
        prose = without_names(strip_code(text))
        n_words = len(words(prose))
        if (
            n_words == 0
        ):  # nothing to judge: a reply that is all code is in no language, not a wrong one
            return 1.0 if code_tokens(text) else 0.0
        whole = self._detect(prose)
        sents = [(s, len(words(s))) for s in sentences(prose)]
        # sentences too short to judge abstain: they count neither for nor against `lang`
        judged = [(s, n) for s, n in sents if n >= JUDGED_SENTENCE_WORDS]
        if (
            (n_words < SHORT_PROSE_WORDS or not judged)
            and whole != lang
            and self.backend == "lingua"
        ):
            conf = self._confidence(prose)
            return 0.0 if conf.get(whole, 0.0) >= SHORT_PROSE_CONFIDENCE else 1.0
        if whole == lang:
            foreign = sum(
                n
                for s, n in sents
                if n >= LONG_SENTENCE_WORDS and (d := self._detect(s)) != lang and d in set(others)
            )
            return 1.0 - foreign / max(1, sum(n for _, n in sents))
        if not judged:
            return 1.0
        return sum(n for s, n in judged if self._detect(s) == lang) / sum(n for _, n in judged)


def text_language(
    texts: Iterable[str], lang_id: LanguageIdentifier, languages: tuple[str, ...]
) -> str:
    """The language of a conversation: its user and assistant turns together, among `languages`.

    Measured on the turns people wrote, never on a system prompt (an English system prompt
    must not outvote a short Portuguese chat). Ties go to the first language."""
    prose = " ".join(strip_code(t) for t in texts)
    detected = lang_id.detect(prose)
    if detected in languages:
        return detected
    conf = lang_id.confidence(prose)
    return max(languages, key=lambda lg: (conf.get(lg, 0.0), -languages.index(lg)))


def conversation_language(
    conversation: Conversation, lang_id: LanguageIdentifier, languages: tuple[str, ...]
) -> str:
    """`text_language` of one conversation's user and assistant turns."""
    return text_language(
        [t.content for t in conversation.turns if t.role != "system"], lang_id, languages
    )


def conversation_languages(
    conversations: list[Conversation], languages: tuple[str, ...]
) -> dict[str, str]:
    """id → the language of each conversation, among `languages`."""
    lang_id = LanguageIdentifier()
    return {c.id: conversation_language(c, lang_id, languages) for c in conversations}
