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
