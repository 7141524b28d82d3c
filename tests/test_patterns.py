"""Agent-talk patterns: every pattern's own examples, tricky direct replies, and properties."""

from __future__ import annotations

import json
import signal
import unicodedata
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from molting.text.normalize import SpanMap
from molting.text.patterns import (
    _MATCHER,
    BY_ID,
    CATEGORIES,
    NEEDLES,
    PATTERNS,
    find_agent_talk,
    is_agent_like,
    normalize,
)
from molting.text.redos import backtracking_problems, unbounded

DEV = Path(__file__).parent / "data" / "agent_openings_dev.jsonl"

CASES = [(p.id, t, True) for p in PATTERNS for t in p.positives] + [
    (p.id, t, False) for p in PATTERNS for t in p.negatives
]


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
    assert text[hit.start : hit.end].strip() == hit.match
    assert hit.match.startswith("Vou análisar")


# ------------------------------------------------------------------ properties

PREAMBLES = [
    "I'll start by reading",
    "I'll continue by updating",
    "I will begin by checking",
    "Let me check",
    "Let me read",
    "Let me analyze",
    "Let me look at",
    "Vou implementar",
    "Vou analisar",
    "Vou verificar",
    "Vou começar pelo",
    "Deixa eu verificar",
    "Primeiro, preciso entender",
    "<thinking>",
    "Agora vou rodar",
]
ACCENTS = str.maketrans({"a": "á", "e": "ê", "o": "ô", "c": "ç", "i": "í"})


@st.composite
def agent_text(draw):
    pre = draw(st.sampled_from(PREAMBLES))
    words = pre.split(" ")
    words = [
        w.upper() if draw(st.booleans()) else w.lower() if draw(st.booleans()) else w for w in words
    ]
    if draw(st.booleans()) and not pre.startswith("<"):
        words = [
            w.translate(ACCENTS) if w.lower() not in ("i'll", "i", "let", "me") else w
            for w in words
        ]
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


OPENERS = [
    "Short answer:",
    "Here's the thing:",
    "Bottom line:",
    "Olha só:",
    "Resumindo:",
    "Na real,",
    "Let me know if",
    "Let me be honest:",
    "I'll be blunt:",
    "Vou ser sincero:",
    "Deixa eu te dar uma dica:",
    "",
]
WORDS = (
    "use the cache query index python você pode usar um arquivo config tests pass fast slow "
    "deploy branch commit merge café chuva bora sure yes no because then it works rápido"
).split()


@st.composite
def direct_text(draw):
    opener = draw(st.sampled_from(OPENERS))
    sentences = draw(
        st.lists(st.lists(st.sampled_from(WORDS), min_size=2, max_size=10), min_size=1, max_size=4)
    )
    body = ". ".join(" ".join(s).capitalize() for s in sentences) + "."
    closer = draw(
        st.sampled_from(
            ["", " Bora!", " Fica a dica.", " You've got this.", " Let me know how it goes."]
        )
    )
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


# ------------------------------------------------------------------ backtracking

# (text, is it agent talk): a repeated preamble is; "now" 25,000 words on is out of reach
ADVERSARIAL = [
    ("let me " * 15_000, True),
    ("i'll " * 20_000, True),
    ("reading " + "a" * 100_000, False),
    ("`" * 100_000, False),
    (". " * 50_000, False),
    ("<thinking" * 12_000, False),
    ("vou " * 25_000, False),
    ("lendo o " * 12_000, False),
    ("reading the " + "x." * 50_000, False),
    ("step 1: " * 12_000, False),
    ("ok, " * 25_000, False),
    ("running `" + "a" * 100_000, False),
    ("deixa eu " * 11_000, False),
    ("\n" * 100_000, False),
    (", " * 50_000, False),
    ("— " * 50_000, False),
    ("estou " * 20_000, False),
    ("going to " * 12_000, False),
    ("vou te " * 15_000, False),
    ("opening the " + "x " * 50_000 + "to see", False),
    ("hm " * 34_000, False),
    ("sure — " * 15_000, False),
    ("primeiro eu " * 9_000, True),
    ("let me just " * 9_000, True),
    ("i'm " * 25_000, False),
    ("running " + "the " * 25_000 + "now", False),
]
REGEXES = [(p.id, p.compiled) for p in PATTERNS] + [
    ("matcher.at_start", _MATCHER.at_start),
    ("matcher.at_boundary", _MATCHER.at_boundary),
    ("matcher.at_reply_start", _MATCHER.at_reply_start),
]


@pytest.mark.parametrize("name, rx", REGEXES, ids=[r[0] for r in REGEXES])
def test_patterns_are_safe_from_catastrophic_backtracking(name, rx):
    """Proved on the parse tree (molting/text/redos.py), not timed: no nested or competing long
    repeats, and every repeat bounded, so matching is linear in the length of the text."""
    assert backtracking_problems(rx) == []
    assert unbounded(rx) == 0


@pytest.mark.parametrize(
    "regex",
    [
        r"(a+)+",
        r"(?:a|a)*",
        r"(?:a?a)*",
        r"[ \t]*[ \t]+",
        r"\s*x?\s*y",
        r"[^x]*b[^x]*c",
        r"(?:\w{1,100}\s?){1,100}",
        r"(?:x{0,100}){0,100}",
        r"(?:a|ab){0,50}",
        r"(?:a{0,40}|b)(?:c|a{0,40})",
        r"(?:(?:now|ok)[ \t]*[,!.]?[ \t]+){0,2}",  # the filler these patterns had before 2026.12.1
    ],
)
def test_the_backtracking_check_refuses_known_bad_regexes(regex):
    assert backtracking_problems(regex)


@pytest.mark.parametrize(
    "regex",
    [
        r"[a-z]{0,200}1[a-z]{0,200}",
        r"a*b*",
        r"\d+[.]\d+",
        r"(?:\w{1,64}+ ){0,30}?x",
        r"(?:[^\n.]|\.(?=[^\s.])){0,200}?(?:\.\.\.|…)",
    ],
)
def test_the_backtracking_check_accepts_linear_regexes(regex):
    assert backtracking_problems(regex) == []


@contextmanager
def hang_guard(seconds: int = 120):
    """Fail instead of hanging: the regex engine checks for signals while it backtracks."""

    def alarm(*_):
        raise TimeoutError(f"no result after {seconds} s: catastrophic backtracking")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def reference_hits(text: str) -> list[tuple[int, str]]:
    """(start, id) of each pattern's first match, searching pattern by pattern (no fast path)."""
    norm = normalize(text)
    found = [
        (m.start(), i, p.id) for i, p in enumerate(PATTERNS) for m in [p.compiled.search(norm)] if m
    ]
    spans = SpanMap(text, norm)
    return [(spans(s, s)[0], pid) for s, _, pid in sorted(found)]


def fast_hits(text: str) -> list[tuple[int, str]]:
    return [(h.start, h.pattern.id) for h in find_agent_talk(text)]


@pytest.mark.parametrize("text, agent", ADVERSARIAL, ids=[a[0][:12] for a in ADVERSARIAL])
def test_adversarial_inputs_give_the_same_answer_as_a_plain_search(text, agent):
    assert len(text) >= 90_000
    with hang_guard():
        assert fast_hits(text) == reference_hits(text)
        assert is_agent_like(text) == agent


# ------------------------------------------------------------------ the fast path is a plain search


def _corpus() -> list[str]:
    fixture = json.loads(
        (Path(__file__).parents[1] / "fixtures/claudio/dataset_sharegpt.json").read_text(
            encoding="utf-8"
        )
    )
    dev = [json.loads(line)["text"] for line in DEV.read_text(encoding="utf-8").splitlines()]
    return (
        [t["value"] for r in fixture for t in r["conversations"]]
        + dev
        + [x for p in PATTERNS for x in p.positives + p.negatives]
    )


def test_all_patterns_at_once_equal_each_pattern_searched_alone():
    for text in _corpus():
        assert fast_hits(text) == reference_hits(text), text
        assert is_agent_like(text) == bool(reference_hits(text)), text


def test_the_head_guard_drops_no_match_of_any_pattern():
    """Anchored patterns carry a head-word guard (it makes the prefilter cheap); on every text we
    have, each pattern matches exactly where it would without it."""
    import re

    from molting.text import grammar as G
    from molting.text.matcher import split_filler

    texts = [normalize(t) for t in _corpus()]
    for p in PATTERNS:
        if p.anchored:
            filler, body = split_filler(p.regex)
            unguarded = re.compile(G.START + filler + body)
            for norm in texts:
                a, b = p.compiled.search(norm), unguarded.search(norm)
                assert (a and a.span()) == (b and b.span()), (p.id, norm)


PIECES = st.sampled_from(
    [
        "Let me ",
        "I'll ",
        "Vou ",
        "Deixa eu ",
        "Sure — ",
        "Ok, ",
        "Running `x`",
        "…",
        "...",
        ". ",
        ", ",
        "\n",
        "- ",
        "1. ",
        "now",
        "agora",
        " the ",
        "check",
        "reading",
        "lendo",
        "te ",
        "be ",
        "é",
        "ção",
        "ﬁ",
        "\u200b",
        "’",
        "<thinking>",
        "then I'll ",
        "primeiro eu ",
        "to see ",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=25).map("".join))
@example("Sure — let me sketch a plan…")
@example("Ok… \u200blet me check")
def test_fast_path_equals_a_plain_search(text):
    assert fast_hits(text) == reference_hits(text)


# ------------------------------------------------------------------ normalisation

_TABLE = {
    c: None
    for c in range(0x110000)
    if unicodedata.combining(chr(c)) or unicodedata.category(chr(c)) == "Cf"
}
_TABLE.update({0x2019: "'", 0x2018: "'", 0x02BC: "'", 0x00B4: "'"})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
@example("Ok…\u200bLet me ﬁx İt")
def test_normalize_is_nfkd_without_marks_and_format_characters_casefolded(text):
    assert normalize(text) == unicodedata.normalize("NFKD", text).translate(_TABLE).casefold()


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("ab .,'") + ["é", "…", "\u200b", "ß", "ﬁ", "\u0301", "’", "\ufeff"]
        ),
        max_size=20,
    ),
    st.data(),
)
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
    assert text[hit.start : hit.end].strip() == hit.match == f"Let me{char} check"


def test_let_me_zero_width_space_check_is_caught():
    assert is_agent_like("Let me\u200b check")


# ------------------------------------------------------------------ generalisation


def _dev_rows() -> list[dict]:
    return [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]


# Labelled openings by three authors who never read the patterns: the dev set (used to write
# them), held-out set A (measured once: EN 0.967 / 0.957, PT 0.935 / 0.946; its misses then
# guided four constructions, so it is no longer held out) and held-out set B (never looked at).
OPENING_SETS = (
    "agent_openings_dev.jsonl",
    "agent_openings_heldout_a.jsonl",
    "agent_openings_heldout_b.jsonl",
)


@pytest.mark.parametrize("lang", ["en", "pt"])
@pytest.mark.parametrize("name", OPENING_SETS)
def test_labelled_openings_precision_and_recall(name, lang):
    """Curation's targets on openings written outside the fixture: precision ≥ 0.98,
    recall ≥ 0.95."""
    rows = [
        json.loads(x)
        for x in (DEV.parent / name).read_text(encoding="utf-8").splitlines()
        if x.strip()
    ]
    rows = [r for r in rows if r["lang"] == lang]
    assert len(rows) >= 150
    tp = sum(r["label"] == "agent" and is_agent_like(r["text"]) for r in rows)
    fp = [r["text"] for r in rows if r["label"] == "direct" and is_agent_like(r["text"])]
    fn = [r["text"] for r in rows if r["label"] == "agent" and not is_agent_like(r["text"])]
    assert tp / (tp + len(fp)) >= 0.98, fp
    assert tp / (tp + len(fn)) >= 0.95, fn


# Written for these tests, not taken from the dev set: verbs and interjections no pattern lists.
UNSEEN_AGENT = [
    "Let me storyboard the onboarding flow before we touch any code.",
    "Sure thing — I'll whip up a quick prototype.",
    "Okay, let me untangle these imports one by one.",
    "Got it. I'll annotate each paragraph with the issues I find.",
    "Alright, I'm going to bucket these expenses into three groups.",
    "I will now tokenize the corpus.",
    "Yep, I'll benchmark the three regexes and report back.",
    "Hmm, let me mull this over for a second.",
    "Lemme poke around the config for a sec.",
    "I'd like to quickly recap what you've told me so far.",
    "Vou esquematizar o fluxo de autenticação antes de mexer no código.",
    "Certo, vou catalogar os endpoints.",
    "Deixa eu destrinchar essa fórmula aos poucos.",
    "Opa, vou priorizar os bugs por gravidade.",
    "Deixe-me recapitular o que você disse até agora.",
    "Tá, deixa eu cronometrar as duas versões.",
    "Eu vou esmiuçar o contrato cláusula por cláusula.",
    "Deixa eu matutar sobre isso um pouco.",
    "Tô baixando os dados do IBGE agora.",
    "Calculando os juros compostos mês a mês…",
    "Compiling the project with debug flags…",
]
DIRECT_HARD = [
    "Let me be straight with you: the plan is too ambitious.",
    "I'll gladly admit I was wrong about Redis.",
    "Let me tell you, nothing beats a good cast iron pan.",
    "You'll want to run the migration before deploying.",
    "First, back up the database; then run the migration.",
    "Don't let me talk you out of it, but it's risky.",
    "I'll go with the cheaper option if I were you.",
    "I'm afraid that won't work on Windows.",
    "Going to the gym three times a week is plenty.",
    "Something like `pip install -U pip` should do.",
    "Vou ser bem direto: não compensa.",
    "Vou te dizer uma coisa: esse carro não vale o preço.",
    "A função vai ordenar a lista antes de buscar.",
    "Lendo o código dá pra ver o bug.",
    "Quando você chama a função, ela trava.",
    "Pensando bem, fica com o Postgres.",
    "Resumindo: use um índice.",
    "Não vou mentir: é difícil.",
]


@pytest.mark.parametrize("text", UNSEEN_AGENT)
def test_agent_talk_with_verbs_no_pattern_lists_is_caught(text):
    assert is_agent_like(text)


@pytest.mark.parametrize("text", DIRECT_HARD)
def test_direct_replies_that_look_like_announcements_are_kept(text):
    assert find_agent_talk(text) == [], [h.pattern.id for h in find_agent_talk(text)]


@pytest.mark.parametrize("p", PATTERNS, ids=[p.id for p in PATTERNS])
def test_every_match_contains_a_needle(p):
    for text in p.positives:
        m = p.compiled.search(normalize(text))
        assert m and any(n in normalize(text) for n in NEEDLES[p.id])


def test_the_validity_report_is_current():
    from molting.curate.validity import NOTES, measure, render

    root = DEV.parent
    expected = render({name: measure(root / name) for name in OPENING_SETS}, NOTES)
    committed = (DEV.parents[2] / "reports" / "CURATION_VALIDITY.md").read_text(encoding="utf-8")
    assert committed == expected, (
        "run: python -m molting.curate.validity tests/data/agent_openings_*.jsonl "
        "-o reports/CURATION_VALIDITY.md"
    )
