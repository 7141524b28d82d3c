"""Every agent-talk pattern against one reply at once, with the same result as one search each.

An anchored pattern is `START + filler + HEAD_GUARD + body`: it can only match at the reply
start or right after a boundary character, and only where a head word follows its filler. So:

1. One scan finds the starts where some filler is followed by a head word (a superset of the
   starts where an anchored pattern matches). The boundary characters form one class, so the
   engine looks for them in C; most replies have no such start and stop here.
2. At each of those few starts one regex collects every anchored pattern that matches there:
   a lookahead per pattern that captures that pattern's match. The whitespace/bullet prefix
   and each filler (atomic) can be read only one way that a pattern continues from, so they
   are matched once and shared; the bodies after each filler are grouped by the character
   they can begin with (read off their parse trees), so only a few are tried.
3. The few unanchored patterns (tags, "then I'll …") are searched when one of their needles
   (a literal every match contains) occurs in the reply.

The first start at which a pattern matches is where `search` would find it, and the capture
is that match, so the result equals searching pattern by pattern (tests/test_patterns.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import compress
from typing import Protocol

from molting.text import grammar as G
from molting.text.redos import first_chars


class _Pattern(Protocol):
    id: str
    regex: str
    anchored: bool


def split_filler(regex: str) -> tuple[str, str]:
    """(the filler `regex` opens with, or "", the rest): the head guard goes between them."""
    for f in sorted(G.FILLERS.values(), key=len, reverse=True):
        if regex.startswith(f):
            return f, regex[len(f) :]
    return "", regex


def compile_pattern(regex: str, anchored: bool) -> re.Pattern[str]:
    if not anchored:
        return re.compile(regex)
    filler, body = split_filler(regex)
    return re.compile(G.START + filler + G.HEAD_GUARD + body)


def _capture_each(bodies: list[str]) -> str:
    return "".join(f"(?:(?=({b}))|)" for b in bodies)


class Matcher:
    def __init__(self, patterns: Sequence[_Pattern], needles: dict[str, tuple[str, ...]]):
        anchored = [i for i, p in enumerate(patterns) if p.anchored]
        self.floating = [
            (i, compile_pattern(p.regex, False), needles[p.id])
            for i, p in enumerate(patterns)
            if not p.anchored
        ]
        # Every filler variant's one reading is also a reading of FILLER with backtracking.
        trigger = G.AFTER_BOUNDARY + G.FILLER.replace("(?>", "(?:", 1) + G.HEAD_GUARD
        self.at_reply_start = re.compile(trigger)
        by_filler: dict[str, list[int]] = {}
        for i in anchored:
            by_filler.setdefault(split_filler(patterns[i].regex)[0], []).append(i)
        self.groups: list[int] = []  # capture group k+1 belongs to pattern self.groups[k]
        parts = []
        for filler, ids in by_filler.items():
            # The bodies after one filler, grouped by the character they can begin with.
            by_char: dict[str, list[int]] = {}
            for i in ids:
                chars = first_chars(split_filler(patterns[i].regex)[1])
                assert chars is not None, f"{patterns[i].id}: its body should open with a letter"
                for c in sorted(chars):
                    by_char.setdefault(c, []).append(i)
            branches = []
            for c, char_ids in by_char.items():
                self.groups.extend(char_ids)
                branches.append(
                    f"(?={re.escape(c)})"
                    + _capture_each([split_filler(patterns[i].regex)[1] for i in char_ids])
                )
            parts.append(f"(?:(?={filler}{G.HEAD_GUARD}(?:" + "|".join(branches) + "))|)")
        every = "".join(parts)
        self.numbers = range(1, len(self.groups) + 1)
        self.at_start = re.compile(f"(?={trigger})" + G.AFTER_BOUNDARY + every)
        # A boundary character, or a hyphen after a space; then everything in lookaheads, so
        # the scan moves on by one character and sees every boundary.
        self.at_boundary = re.compile(
            G.BOUNDARY[:-1]
            + r"\-](?<![^ \t]-)(?="
            + trigger
            + ")(?="
            + G.AFTER_BOUNDARY
            + every
            + ")"
        )

    def matches(self, norm: str) -> list[tuple[int, int, int]]:
        """(pattern index, start, end) of every pattern's first match in normalized text."""
        found, seen = [], set()
        first = self.at_start.match(norm)
        for pos, m in ([(0, first)] if first else []) + [
            (b.end(), b) for b in self.at_boundary.finditer(norm)
        ]:
            for k in compress(self.numbers, m.groups()):  # the groups that captured (never empty)
                if self.groups[k - 1] not in seen:
                    seen.add(self.groups[k - 1])
                    found.append((self.groups[k - 1], pos, m.end(k)))
        for i, rx, needles in self.floating:
            for n in needles:
                if n in norm:
                    if m := rx.search(norm):
                        found.append((i, m.start(), m.end()))
                    break
        return found
