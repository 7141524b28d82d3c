"""Agent-talk patterns: every pattern's own examples, tricky direct replies, and properties."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from molting.curate.patterns import BY_ID, CATEGORIES, PATTERNS, find_agent_talk, is_agent_like, normalize
from molting.curate.textnorm import SpanMap

CASES = [(p.id, t, True) for p in PATTERNS for t in p.positives] + [(p.id, t, False) for p in PATTERNS for t in p.negatives]


def test_pattern_set_is_complete():
    assert len(PATTERNS) >= 21
    assert {p.lang for p in PATTERNS} == {"en", "pt"}
    assert sum(p.lang == "pt" for p in PATTERNS) >= 8
    assert all(p.category in CATEGORIES for p in PATTERNS)
    assert all(p.positives and p.negatives and p.description for p in PATTERNS)
    assert "en.thinking_tags" in BY_ID


@pytest.mark.parametrize("pid, text, caught", CASES, ids=[f"{c[0]}:{c[1][:30]}" for c in CASES])
def test_pattern_examples(pid, text, caught):
    ids = [h.pattern.id for h in find_agent_talk(text)]
    if caught:
        assert pid in ids
    else:
        assert ids == [], f"direct text flagged by {ids}"


@pytest.mark.parametrize(
    "text",
    [
        "Let me know if it still breaks after that.",
        "Let me be honest: that schema will hurt you later.",
        "I'll be blunt — ship the boring version first.",
        "Vou ser sincero: esse código tá ótimo.",
        "Deixa eu te dar uma dica: usa `ss -tulpn`.",
        "Short answer: `git stash`. Then let me know how it goes.",
        "You'll start by reading the docs, and that's fine.",
        "Olha só: você vai implementar isso em duas linhas.",
        "Running tests in CI catches this before prod.",
        "Step 1: install Python 3.11. Step 2: run `make test`.",
    ],
)
def test_direct_replies_are_not_agent_talk(text):
    assert find_agent_talk(text) == []


def test_mid_sentence_mentions_are_not_anchored():
    assert not is_agent_like("The tool says 'let me check' when it is busy.")
    assert is_agent_like("Sure thing. Let me check the logs.")


def test_hit_reports_span_in_the_original_text():
    text = "Beleza.\nVou análisar o ﬁle agora."
    hit = find_agent_talk(text)[0]
    assert text[hit.start:hit.end].strip() == hit.match
    assert hit.match.startswith("Vou análisar")


# ------------------------------------------------------------------ properties

PREAMBLES = [
    "I'll start by reading", "I'll continue by updating", "I will begin by checking", "Let me check",
    "Let me read", "Let me analyze", "Let me look at", "Vou implementar", "Vou analisar", "Vou verificar",
    "Vou começar pelo", "Deixa eu verificar", "Primeiro, preciso entender", "<thinking>", "Agora vou rodar",
]
ACCENTS = str.maketrans({"a": "á", "e": "ê", "o": "ô", "c": "ç", "i": "í"})


@st.composite
def agent_text(draw):
    pre = draw(st.sampled_from(PREAMBLES))
    words = pre.split(" ")
    words = [w.upper() if draw(st.booleans()) else w.lower() if draw(st.booleans()) else w for w in words]
    if draw(st.booleans()) and not pre.startswith("<"):
        words = [w.translate(ACCENTS) if w.lower() not in ("i'll", "i", "let", "me") else w for w in words]
    seps = [draw(st.sampled_from([" ", "  ", "\t", " \t "])) for _ in words[1:]]
    phrase = words[0] + "".join(s + w for s, w in zip(seps, words[1:]))
    phrase = phrase.replace("'", draw(st.sampled_from(["'", "’"])))
    before = draw(st.sampled_from(["", "Ok. ", "Sure!\n", "- ", "Beleza, "]))
    after = draw(st.text(max_size=60))
    return before + phrase + " " + after


@settings(max_examples=300, deadline=None)
@given(agent_text())
@example("LET   ME\tCHECK ")
@example("vou   ANÁLISAR x")
@example("Ok. I’ll start by \u0301x")
def test_any_known_preamble_is_caught(text):
    assert is_agent_like(text), repr(text)


OPENERS = ["Short answer:", "Here's the thing:", "Bottom line:", "Olha só:", "Resumindo:", "Na real,",
           "Let me know if", "Let me be honest:", "I'll be blunt:", "Vou ser sincero:", "Deixa eu te dar uma dica:", ""]
WORDS = ("use the cache query index python você pode usar um arquivo config tests pass fast slow "
         "deploy branch commit merge café chuva bora sure yes no because then it works rápido").split()


@st.composite
def direct_text(draw):
    opener = draw(st.sampled_from(OPENERS))
    sentences = draw(st.lists(st.lists(st.sampled_from(WORDS), min_size=2, max_size=10), min_size=1, max_size=4))
    body = ". ".join(" ".join(s).capitalize() for s in sentences) + "."
    closer = draw(st.sampled_from(["", " Bora!", " Fica a dica.", " You've got this.", " Let me know how it goes."]))
    return f"{opener} {body}{closer}".strip()


@settings(max_examples=300, deadline=None)
@given(direct_text())
def test_generated_direct_replies_are_kept(text):
    assert not is_agent_like(text), [(h.pattern.id, h.match) for h in find_agent_talk(text)]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_normalize_is_idempotent_and_case_insensitive(text):
    n = normalize(text)
    assert normalize(n) == n
    assert is_agent_like(text) == is_agent_like(text.upper()) or "ß" in text or "ı" in text.lower()


# ------------------------------------------------------------------ normalisation

_TABLE = {c: None for c in range(0x110000) if unicodedata.combining(chr(c)) or unicodedata.category(chr(c)) == "Cf"}
_TABLE.update({0x2019: "'", 0x2018: "'", 0x02BC: "'", 0x00B4: "'"})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
@example("Ok…\u200bLet me ﬁx İt")
def test_normalize_is_nfkd_without_marks_and_format_characters_casefolded(text):
    assert normalize(text) == unicodedata.normalize("NFKD", text).translate(_TABLE).casefold()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .,'") + ["é", "…", "\u200b", "ß", "ﬁ", "\u0301", "’", "\ufeff"]), max_size=20),
       st.data())
def test_spans_map_back_character_by_character(text, data):
    norm = normalize(text)
    mapping = [i for i, ch in enumerate(text) for _ in normalize(ch)] + [len(text)]
    start = data.draw(st.integers(0, len(norm)))
    end = data.draw(st.integers(start, len(norm)))
    assert SpanMap(text, norm)(start, end) == (mapping[start], max(mapping[end], mapping[start]))


@pytest.mark.parametrize("char", ["\u200b", "\u200c", "\u200d", "\u00ad", "\ufeff", "\u2060"])
def test_invisible_format_characters_do_not_hide_agent_talk(char):
    text = f"That is odd. Let me{char} check the logs."
    hit = find_agent_talk(text)[0]
    assert hit.pattern.id == "en.let_me_check"
    assert text[hit.start:hit.end].strip() == hit.match == f"Let me{char} check"


def test_let_me_zero_width_space_check_is_caught():
    assert is_agent_like("Let me\u200b check")


ADVERSARIAL = [
    "let me " * 15_000, "i'll " * 20_000, "reading " + "a" * 100_000, "`" * 100_000, ". " * 50_000,
    "<thinking" * 12_000, "vou " * 25_000, "lendo o " * 12_000, "reading the " + "x." * 50_000,
    "step 1: " * 12_000, ("ok, " * 25_000), "running `" + "a" * 100_000, "deixa eu " * 11_000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=[a[:12] for a in ADVERSARIAL])
def test_patterns_are_safe_from_catastrophic_backtracking(text):
    # A backtracking blow-up on 100 kB takes minutes; a linear scan takes milliseconds.
    # 5 s is generous enough never to flake on a loaded 2-core CI machine.
    assert len(text) >= 90_000
    t0 = time.perf_counter()
    find_agent_talk(text)
    assert time.perf_counter() - t0 < 5.0


@pytest.mark.parametrize("p", PATTERNS, ids=[p.id for p in PATTERNS])
def test_every_match_contains_a_needle(p):
    from molting.curate.patterns import NEEDLES

    for text in p.positives:
        m = p.compiled.search(normalize(text))
        assert m and any(n in normalize(text) for n in NEEDLES[p.id])
