"""A static check that a regex cannot backtrack super-linearly, read off its parse tree.

Python's `re` backtracks, so a pattern is only safe by construction. This walks the tree that
`re._parser` builds and reports what it cannot prove safe. A repeat is *long* when it may run
more than `LONG` times (unbounded ones included); short repeats cost at most a constant factor.

1. Star height: no long repeat inside another repeat that may run more than once
   (`(a+)+`, `(?:\\w{1,99} ?){1,99}`), unless it is possessive (`{1,64}+` never gives back).
2. Unambiguous iterations: the body of a long repeat consumes exactly one character per
   iteration, and when it has alternatives their character sets are disjoint (`(?:a|ab)*`,
   `(?:a?a)*` are refused), so there is one way to split a run into iterations.
3. No competition: two long repeats whose characters overlap may not follow one another
   unless something between them that the first cannot consume pins where the first ends
   (`[ \\t]*[ \\t]+`, `\\s*x?\\s*`, `[^x]*b[^x]*` are refused; `[a-z]*1[a-z]*` is fine).

With 1–3, each long repeat is tried at most once per end position of the one before it that it
does not compete with, so matching from one start costs O(length); `unbounded` lists the
repeats that make that length the whole text rather than a constant (a search then tries every
start). Lookarounds are checked as patterns of their own.
"""

from __future__ import annotations

import re
from functools import cache
from re import _constants as C  # the parser `re` itself compiles with (Python ≥ 3.11)
from re import _parser as P

LONG = 32
_ALL = ((0, 0x10FFFF),)
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT)
_ZERO_WIDTH = (C.AT, C.ASSERT, C.ASSERT_NOT)


# ------------------------------------------------------------------ character sets as intervals
def _merge(iv) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for lo, hi in sorted(iv):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def _complement(iv) -> tuple[tuple[int, int], ...]:
    out, nxt = [], 0
    for lo, hi in _merge(iv):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    return tuple(out + ([(nxt, 0x10FFFF)] if nxt <= 0x10FFFF else []))


def _overlap(a, b) -> bool:
    return any(lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in a for lo2, hi2 in b)


@cache
def _category(cat) -> tuple[tuple[int, int], ...]:
    """Exact code points of a class escape, by asking `re` itself (computed once per category)."""
    escape = {
        C.CATEGORY_DIGIT: r"\d",
        C.CATEGORY_SPACE: r"\s",
        C.CATEGORY_WORD: r"\w",
        C.CATEGORY_NOT_DIGIT: r"\D",
        C.CATEGORY_NOT_SPACE: r"\S",
        C.CATEGORY_NOT_WORD: r"\W",
    }.get(cat)
    if escape is None:
        return _ALL  # over-approximate anything unexpected
    rx = re.compile(escape)
    return _merge((c, c) for c in range(0x110000) if rx.match(chr(c)))


def _class(op, av) -> tuple[tuple[int, int], ...]:
    """The characters one single-character item can consume."""
    if op is C.LITERAL:
        return ((av, av),)
    if op is C.NOT_LITERAL:
        return _complement(((av, av),))
    if op is C.ANY:
        return _ALL
    iv, negate = [], False
    for sub_op, sub_av in av:  # C.IN
        if sub_op is C.NEGATE:
            negate = True
        elif sub_op is C.LITERAL:
            iv.append((sub_av, sub_av))
        elif sub_op is C.RANGE:
            iv.append(sub_av)
        elif sub_op is C.CATEGORY:
            iv.extend(_category(sub_av))
        else:
            iv.extend(_ALL)
    return _complement(iv) if negate else _merge(iv)


# ------------------------------------------------------------------ tree helpers
def _children(op, av) -> list[list]:
    """Consuming sub-sequences of an item (lookarounds excluded: they are checked on their own)."""
    if op is C.BRANCH:
        return [list(s) for s in av[1]]
    if op is C.SUBPATTERN:
        return [list(av[-1])]
    if op is C.ATOMIC_GROUP:
        return [list(av)]
    if op in _REPEATS:
        return [list(av[2])]
    if op is C.GROUPREF_EXISTS:
        return [list(av[1])] + ([list(av[2])] if av[2] is not None else [])
    return []


def _is_long(op, av) -> bool:
    return op in _REPEATS and (av[1] is C.MAXREPEAT or av[1] > LONG)


def _nullable(seq) -> bool:
    return all(_item_nullable(op, av) for op, av in seq)


def _item_nullable(op, av) -> bool:
    if op in _ZERO_WIDTH:
        return True
    if op in _REPEATS:
        return av[0] == 0 or _nullable(av[2])
    if op is C.GROUPREF:
        return True  # a backreference may be empty
    kids = _children(op, av)
    if op in (C.BRANCH, C.GROUPREF_EXISTS):
        return any(_nullable(k) for k in kids)
    return bool(kids) and all(
        _nullable(k) for k in kids
    )  # a group; a single character is not nullable


def _chars(seq, first: bool = False) -> tuple[tuple[int, int], ...]:
    """Every character the sequence may consume, or with `first` the ones it may consume first
    (over-approximated)."""
    iv: list[tuple[int, int]] = []
    for op, av in seq:
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            iv.extend(_class(op, av))
        elif op is C.GROUPREF:
            iv.extend(_ALL)
        for kid in _children(op, av):
            iv.extend(_chars(kid, first))
        if first and not _item_nullable(op, av):
            break
    return _merge(iv)


def _edge_longs(op, av, from_end: bool) -> list:
    """Long repeats that can be the last (or first) consuming part of an item."""
    if _is_long(op, av):
        return [(op, av)]
    out = []
    for kid in _children(op, av):
        for sub_op, sub_av in reversed(kid) if from_end else kid:
            out += _edge_longs(sub_op, sub_av, from_end)
            if not _item_nullable(sub_op, sub_av):
                break
    return out


# ------------------------------------------------------------------ the three rules
def _single_char_alternatives(body) -> list | None:
    """Character sets of the alternatives when each consumes exactly one character, else None."""
    items = [(op, av) for op, av in body if op not in _ZERO_WIDTH]
    if len(items) != 1:
        return None
    op, av = items[0]
    if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
        return [_class(op, av)]
    if op in (C.SUBPATTERN, C.ATOMIC_GROUP):
        return _single_char_alternatives(_children(op, av)[0])
    if op is C.BRANCH:
        alts = [_single_char_alternatives(k) for k in _children(op, av)]
        return None if any(a is None for a in alts) else [s for a in alts for s in a]
    return None


def _check_sequence(seq, problems: list[str], repeat_depth: int) -> None:
    for i, (op, av) in enumerate(seq):
        if op in (C.ASSERT, C.ASSERT_NOT):
            _check_sequence(list(av[1]), problems, 0)
            continue
        if (
            _is_long(op, av) and op is not C.POSSESSIVE_REPEAT
        ):  # a possessive repeat never gives back
            if repeat_depth:
                problems.append(
                    f"long repeat {{{av[0]},{av[1]}}} nested in another repeat (star height > 1)"
                )
            sets = _single_char_alternatives(list(av[2]))
            if sets is None:
                problems.append(
                    f"long repeat {{{av[0]},{av[1]}}} whose body is not one character per iteration"
                )
            elif any(_overlap(a, b) for k, a in enumerate(sets) for b in sets[k + 1 :]):
                problems.append(f"long repeat {{{av[0]},{av[1]}}} with overlapping alternatives")
        _check_competition(seq, i, problems)
        deeper = repeat_depth + (op in _REPEATS and (av[1] is C.MAXREPEAT or av[1] > 1))
        for kid in _children(op, av):
            _check_sequence(kid, problems, deeper)


def _check_competition(seq, i: int, problems: list[str]) -> None:
    for r_op, r_av in _edge_longs(*seq[i], from_end=True):
        if r_op is C.POSSESSIVE_REPEAT:
            continue  # it ends where it must: nothing after it can take characters back from it
        r_chars = _chars(list(r_av[2]))
        for op, av in seq[i + 1 :]:
            for _n_op, n_av in _edge_longs(op, av, from_end=False):
                if _overlap(r_chars, _chars(list(n_av[2]))):
                    problems.append(
                        f"long repeats {{{r_av[0]},{r_av[1]}}} and {{{n_av[0]},{n_av[1]}}} can "
                        "match the same characters one after the other"
                    )
            if not _item_nullable(op, av) and not _overlap(r_chars, _chars([(op, av)], first=True)):
                break  # this item pins where the repeat ends


def backtracking_problems(pattern: str | re.Pattern[str]) -> list[str]:
    """What the check cannot prove safe in `pattern` (empty: safe by rules 1–3)."""
    text, flags = (
        (pattern.pattern, pattern.flags) if isinstance(pattern, re.Pattern) else (pattern, 0)
    )
    problems = (
        ["case-insensitive patterns are not supported by this check"]
        if flags & re.IGNORECASE
        else []
    )
    _check_sequence(list(P.parse(text, flags)), problems, 0)
    return sorted(set(problems))


def first_chars(regex: str) -> frozenset[str] | None:
    """The characters a match of `regex` can begin with, or None when that is not a short list.

    >>> sorted(first_chars(r"(?:eu[ \\t]{1,8})?vou"))
    ['e', 'v']
    """
    iv = _chars(list(P.parse(regex)), first=True)
    if sum(hi - lo + 1 for lo, hi in iv) > 64:
        return None
    return frozenset(chr(c) for lo, hi in iv for c in range(lo, hi + 1))


def unbounded(pattern: str | re.Pattern[str]) -> int:
    """How many repeats in `pattern` have no upper bound (`*`, `+`, `{n,}`)."""
    text, flags = (
        (pattern.pattern, pattern.flags) if isinstance(pattern, re.Pattern) else (pattern, 0)
    )

    def count(seq) -> int:
        n = 0
        for op, av in seq:
            n += op in _REPEATS and av[1] is C.MAXREPEAT
            kids = _children(op, av) + ([list(av[1])] if op in (C.ASSERT, C.ASSERT_NOT) else [])
            n += sum(count(k) for k in kids)
        return n

    return count(list(P.parse(text, flags)))
