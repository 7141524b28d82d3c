"""Text normalisation for matching, and the way back from a normalized span to the original text.

`normalize`: NFKD, accents (combining marks) stripped, invisible format characters (Unicode
category Cf: zero-width space/joiner/non-joiner, soft hyphen, BOM, bidi marks …) removed,
typographic apostrophes made ASCII, case-folded. ASCII text is only lower-cased, and in other
text only the non-ASCII runs are folded (each run through a small cache), which gives the same
result because every step works character by character and ASCII characters are left alone.

    >>> normalize("Vou ANÁLISAR")
    'vou analisar'
    >>> normalize("Let me\u200b check")
    'let me check'
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from functools import lru_cache

_APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'"}
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


@lru_cache(
    maxsize=8192
)  # runs of non-ASCII characters repeat ("ção", "—", "é"): bounded, so memory stays flat
def _fold(run: str) -> str:
    """NFKD, then combining marks (accents) and format characters (Cf) dropped, apostrophes made
    ASCII."""
    return "".join(
        _APOSTROPHES.get(c, c)
        for c in unicodedata.normalize("NFKD", run)
        if not (unicodedata.combining(c) or unicodedata.category(c) == "Cf")
    )


def _fold_match(m: re.Match[str]) -> str:
    return _fold(m.group())


def normalize(text: str) -> str:
    """NFKD, accents and format characters stripped, case-folded: `normalize("Vou ANÁLISAR")` → 'vou
    analisar'."""
    if text.isascii():
        return text.lower()  # casefold() of ASCII is lower(); folding leaves ASCII alone
    return _NON_ASCII.sub(_fold_match, text).casefold()


_WIDTHS: dict[str, int] = {}


def _width(ch: str) -> int:
    """How many characters `ch` becomes in normalized text (0 for an accent or a zero-width
    space)."""
    w = _WIDTHS.get(ch)
    if w is None:
        if len(_WIDTHS) > 65536:  # bounded, so memory stays flat on any input
            _WIDTHS.clear()
        w = _WIDTHS[ch] = len(normalize(ch))
    return w


class SpanMap:
    """Maps offsets of `norm = normalize(text)` back to offsets of `text`.

    Normalizing works character by character, so only the characters whose normalized width
    is not 1 ("…" → "...", a zero-width space → "") shift offsets; they are found once.

        >>> text = "Ok…\u200bLet me"
        >>> SpanMap(text, normalize(text))(5, 11)  # "let me" in "ok...let me"
        (4, 10)
    """

    def __init__(self, text: str, norm: str):
        self.events: list[tuple[int, int, int]] = []  # (normalized start, width, original index)
        if len(text) == len(norm) and text.isascii():
            return
        odd = "".join(ch for ch in set("".join(_NON_ASCII.findall(text))) if _width(ch) != 1)
        if not odd:
            return
        shift = 0  # normalized offset minus original offset so far
        for m in re.finditer("[" + re.escape(odd) + "]", text):
            w = _width(m.group())
            self.events.append((m.start() + shift, w, m.start()))
            shift += w - 1
        self.ends = [a + w for a, w, _ in self.events]

    def _orig(self, n: int) -> int:
        if not self.events:
            return n
        k = bisect_right(self.ends, n)  # events[:k] end at or before n
        if k < len(self.events) and self.events[k][0] <= n:
            return self.events[k][2]  # inside the expansion of one original character
        if k == 0:
            return n
        a, w, i = self.events[k - 1]
        return i + 1 + (n - (a + w))

    def __call__(self, start: int, end: int) -> tuple[int, int]:
        s = self._orig(start)
        return s, max(self._orig(end), s)
