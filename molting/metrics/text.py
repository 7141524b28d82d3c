"""Text helpers shared by the metric families: strip code, split sentences and words.

Code (`inline` and fenced) is removed before language and fluency checks: `git reset --soft`
is neither English nor Portuguese, and a reply full of identifiers is not word salad.

    >>> words("Usa `x === 5`, não `x = 5`.")
    ['usa', 'não']
"""

from __future__ import annotations

import re

_FENCED = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_INLINE = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"\b(?:https?://|www\.)\S+")
_SENT_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")  # letters, inner hyphen/apostrophe kept
_TOKEN = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|\d+|[^\w\s]")


def strip_code(text: str) -> str:
    """Text without code spans and URLs (each replaced by one space)."""
    return _URL.sub(" ", _INLINE.sub(" ", _FENCED.sub(" ", text)))


CODE_WORD = "qqcodeqq"  # stands for an inline code span or URL where word order matters (syntax)


def code_as_word(text: str) -> str:
    """Text with each inline code span or URL made one placeholder word and each fenced block a
    line break: "passa por `float` antes" keeps its shape instead of losing a word."""
    return _URL.sub(CODE_WORD, _INLINE.sub(CODE_WORD, _FENCED.sub("\n", text)))


def code_spans(text: str) -> list[list[str]]:
    """The whitespace-separated tokens of each code span and fenced block, one list per span."""
    spans = _FENCED.findall(text) + _INLINE.findall(_FENCED.sub(" ", text))
    return [span.strip("`").split() for span in spans]


def code_tokens(text: str) -> list[str]:
    """Whitespace-separated tokens inside code spans and fenced blocks: `git reset --soft` → 3."""
    return [t for span in code_spans(text) for t in span]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_END.split(text) if s.strip()]


def words(text: str) -> list[str]:
    """Lower-cased words of the prose (code removed), accents kept."""
    return [w.lower() for w in _WORD.findall(strip_code(text))]


def tokens(text: str) -> list[str]:
    """Lower-cased words, numbers and punctuation of the prose (code removed)."""
    return [t.lower() for t in _TOKEN.findall(strip_code(text))]


def ngrams(seq: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def require_text(reply: str, what: str = "reply") -> str:
    """The reply, or ValueError for a non-string; empty replies are scored (as degenerate)."""
    if not isinstance(reply, str):
        raise TypeError(f"{what} must be a str, got {type(reply).__name__}")
    return reply


# Function words that carry no topic (echo detection, term overlap). Short, persona-free lists.
STOPWORDS = frozenset(
    """
a an the and or but if then so of to in on at by for with from into about as is are was were be been
being it its this that these those there here i you he she we they me him her us them my your his
our their what which who whom whose when where why how not no yes do does did done have has had can
could will would should shall may might must just also very too more most some any all each every
other such own same than only one two please thanks thank ok okay hi hello hey
o os um uma uns umas e ou mas se entao de do da dos das em no na nos nas num numa por pelo pela
pelos pelas para pra pro com sem sobre como que qual quais quem onde quando porque porquê por que
isso isto aquilo esse essa esses essas este esta estes estas aquele aquela eu tu voce você ele ela
nos nós vos eles elas me te se lhe meu minha meus minhas seu sua seus suas teu tua nosso nossa é e
são foi ser estar está esta estão tem ter há vai vou ao aos à às já não sim tá né mais muito muita
pouco também só
""".split()
)


def content_words(text: str) -> list[str]:
    """Lower-cased prose words that are not function words (accents kept)."""
    return [w for w in words(text) if w not in STOPWORDS and len(w) > 1]


NEAR_DUPLICATE = 0.8  # character 5-gram Jaccard above this: the same question, reworded


def char_grams(text: str, n: int = 5) -> frozenset[str]:
    t = " ".join(text.lower().split())
    return frozenset(t[i : i + n] for i in range(max(1, len(t) - n + 1)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


class NearDuplicates:
    """Finds texts that near-duplicate any of a fixed set (5-gram Jaccard > NEAR_DUPLICATE).

    >>> NearDuplicates(["How do I undo a commit?"]).find("how do I undo a commit ?")
    'How do I undo a commit?'
    """

    def __init__(self, texts: list[str], threshold: float = NEAR_DUPLICATE):
        self.items = [(t, char_grams(t)) for t in texts]
        self.threshold = threshold

    def add(self, text: str) -> None:
        """Also match `text` from now on (a set that grows, e.g. examples already accepted)."""
        self.items.append((text, char_grams(text)))

    def find(self, text: str) -> str | None:
        g = char_grams(text)
        for other, h in self.items:
            # Jaccard cannot exceed min/max of the sizes: skip pairs that differ too much in length
            if min(len(g), len(h)) <= self.threshold * max(len(g), len(h)):
                continue
            if jaccard(g, h) > self.threshold:
                return other
        return None
