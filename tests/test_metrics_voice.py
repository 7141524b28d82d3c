"""Is it *this* persona? Other voices, their catchphrases, and hard gates that abstain on weak
evidence."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import CLAUDIO, TEST_DATA
from molting.metrics import impostors as I
from molting.metrics import personality as P
from molting.metrics.language import LanguageIdentifier
from molting.metrics.topicality import MIN_KEY_TERMS, TopicalAnchor
from molting.persona import load_persona

# ---------------------------------------------------------------- the impostor corpus


def test_the_packaged_corpus_has_eight_voices_answering_the_same_prompts_in_both_languages():
    voices = I.packaged_voices()
    rows = I.packaged_impostors()
    assert len(voices) >= 8
    per = Counter((r["voice"], r["lang"]) for r in rows)
    assert all(per[(v.id, lang)] >= 40 for v in voices for lang in ("en", "pt")), per
    prompts = {v.id: {r["prompt"] for r in rows if r["voice"] == v.id} for v in voices}
    assert (
        len({frozenset(p) for p in prompts.values()}) == 1
    )  # voice, not subject, tells them apart
    assert all(v.signatures.get("en") and v.signatures.get("pt") for v in voices)


def test_a_bundle_adds_its_own_other_voices(tmp_path):
    bundle = tmp_path / "h"
    bundle.mkdir()
    for f in ("persona.yaml", "dataset.json", "eval_prompts.jsonl", "calibration.jsonl"):
        (bundle / f).write_bytes((TEST_DATA / "helena" / f).read_bytes())
    (bundle / "negatives").mkdir()
    rows = [
        {"lang": "en", "reply": "Colleague's answer, in her own words."},
        {"lang": "pt", "reply": "Outra voz, outra pessoa."},
    ]
    (bundle / "negatives/impostor.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    mine = [r for r in I.impostor_rows(load_persona(bundle)) if r["voice"] == I.BUNDLE_VOICE]
    assert [r["reply"] for r in mine] == [r["reply"] for r in rows]


def test_voices_are_dealt_into_cross_fitting_folds_the_same_way_every_time():
    voices = [v.id for v in I.packaged_voices()]
    folds = I.folds(voices + voices[:2])
    assert folds == I.folds(list(reversed(voices)))
    assert set(folds.values()) == set(range(I.FOLDS))


# ---------------------------------------------------------------- other voices' expressions


def test_never_list_quotes_are_phrases_and_prose_is_not():
    never = (
        'Filler ("Great question!", "Let me check…")',
        "European Portuguese forms",
        "“Ótima pergunta!”",
    )
    assert P.never_phrases(never) == ["Great question!", "Let me check", "Ótima pergunta!"]


def test_an_expression_is_another_voice_only_if_neither_the_persona_nor_ordinary_writing_uses_it():
    phrases = ["Missão dada, missão cumprida.", "Next.", "going to", "Short answer:", "Real talk:"]
    own = ["Short answer: a tuple.", "It's going to work."]
    ordinary = ["Real talk: it depends."]
    assert P.foreign_phrases(phrases, own, ordinary) == ["Missão dada, missão cumprida."]


def test_another_voices_catchphrase_costs_a_full_voice_reply_the_pass_line():
    full = P.combine(P.ANCHORED_MAX, 0, 1.0, 1.0, lang_ok=True, degenerate=False, agent=False)
    other = P.combine(
        P.ANCHORED_MAX, 0, 1.0, 1.0, lang_ok=True, degenerate=False, agent=False, foreign=True
    )
    assert full >= 8.5 > other > 0


def test_the_personas_own_catchphrases_are_never_foreign():
    persona = load_persona(CLAUDIO)
    own = {s.lower() for s in persona.card.all_signatures()}
    assert not own & {s.lower() for s in I.foreign_signatures(persona)}


def test_the_shape_of_a_reply_sees_how_it_ends_and_never_its_catchphrases():
    rx = P.signature_regex(["Em resumo:", "Faz sentido?"])
    style = P.StyleClassifier(rx)
    ends = P.SHAPE_NAMES.index("ends_with_question")
    asks = P.shape_features(style.prep_shape("Use a mediana. Qual é o tamanho da amostra?"))
    masked = style.prep_shape("Em resumo: use a mediana.\nFaz sentido?")
    assert asks[ends] == 1.0 and masked == "Use a mediana."
    assert P.shape_features(masked)[ends] == 0.0  # a catchphrase question earns no shape credit
    assert len(P.shape_features("")) == len(P.SHAPE_NAMES)


def test_a_stored_style_model_scores_as_the_fitted_one():
    texts = [
        "Use a mediana. Qual é o seu caso?",
        "Média engana com outlier. Quer ver um exemplo?",
        "Regressão logística serve. Quantas classes você tem?",
        "Use `git stash` and move on!",
        "Certainly! Here are several options to consider.",
        "Run `make test` — done!",
    ]
    labels = [1, 1, 1, 0, 0, 0]
    fitted = P.StyleClassifier(None).fit(texts * 2, labels * 2)
    assert "ends_with_question" in fitted.shape.habits()  # every persona reply asks back
    meta, arrays = fitted.state()
    stored = P.StyleClassifier.from_state(None, meta, arrays)
    probe = ["A mediana resolve. Faz sentido pra você?", "Just `rm -rf build` and retry!"]
    assert stored.proba(probe) == pytest.approx(fitted.proba(probe))


# ------------------------------------------------------------ hard gates abstain on weak evidence

RULE = P.DegenerateRule(min_words=14, loop_ratio=0.45)


@pytest.mark.parametrize(
    "reply",
    [
        "`kubectl rollout undo deploy/api` — volta pra versão anterior.",
        "`git branch --show-current` (Git 2.22+), or `git rev-parse --abbrev-ref HEAD`.",
        "Happy birthday. Take the day off.",
        '```bash\nwhile IFS= read -r l; do echo "$l"; done < f\n```',
    ],
)
def test_a_short_answer_that_ends_like_an_answer_is_not_a_fragment(reply):
    assert P.degenerate_kind(reply, "how do I do it?", RULE, repetition_value=1.0) is None


def test_a_reply_whose_code_block_never_closes_was_cut_off():
    cut = (
        "Use `docker inspect` to check it.\n\n```bash\ndocker inspect -f '{{.Os}}' img:1.0/1.0/1.0"
    )
    assert P.degenerate_kind(cut, "which platform is the image?", RULE, 1.0) == "fragment"
    whole = cut + "\n```\nIt prints the OS."
    assert P.degenerate_kind(whole, "which platform is the image?", RULE, 1.0) is None
    unopened = "def is_adult(age):\n    return age >= 18\n```\n\nThe comparison is the answer."
    assert P.degenerate_kind(unopened, "refactor is_adult", RULE, 1.0) is None


def test_a_reply_that_leaves_inline_code_open_was_cut_off():
    cut = "Lê o ambiente do processo com `sudo cat /proc/$(pgrep -f api)/environ | tr"
    assert P.degenerate_kind(cut, "como vejo as variáveis do processo?", RULE, 1.0) == "fragment"
    whole = cut + " '\\0' '\\n'` e procura a variável."
    assert P.degenerate_kind(whole, "como vejo as variáveis do processo?", RULE, 1.0) is None


@pytest.mark.parametrize(
    "reply", ["Short answer: you", "`kubectl rollout", "Yes", "Jeito mais simples:", "Do this;"]
)
def test_a_reply_cut_mid_sentence_is_a_fragment(reply):
    assert P.degenerate_kind(reply, "how do I do it?", RULE, repetition_value=1.0) == "fragment"


@pytest.mark.parametrize(
    ("reply", "prompt"),
    [
        (
            '`while IFS= read -r l || [ -n "$l" ]; do` — o `||` pega a última linha.',
            "e se a última linha não tiver quebra de linha?",
        ),
        (
            "`def total(prices): return sum(prices)`.",
            "Clean up: `def total(prices): t = 0; for p in prices: t = t + p; return t`",
        ),
    ],
)
def test_code_the_prompt_did_not_show_is_new_content_not_an_echo(reply, prompt):
    assert P.degenerate_kind(reply, prompt, RULE, repetition_value=1.0) is None


@pytest.mark.parametrize(
    ("reply", "prompt"),
    [
        ("The last line has no line break.", "what if the last line has no line break?"),
        ("`git status`: git status.", "What does `git status` say about my status?"),
    ],
)
def test_saying_back_the_prompt_or_its_code_is_still_an_echo(reply, prompt):
    assert P.degenerate_kind(reply, prompt, RULE, repetition_value=1.0) == "echo"


def test_a_sentence_said_twice_word_for_word_is_a_loop():
    loop = (
        "The `DATABASE_URL` is the key. `postgres://user:pass@localhost:5432` is the default. "
        "`postgres://user:pass@localhost:5432` is the one you want. "
        "`Postgres://user:pass@localhost:5432`  is the ONE you want."
    )
    assert P.degenerate_kind(loop, "which URL do I use?", RULE, repetition_value=1.0) == "loop"


@pytest.mark.parametrize(
    "reply",
    [
        # the demo candidate's ev-en-009
        "`SELECT COUNT(*) FROM events WHERE event_id = 1;` is faster. "
        "`SELECT COUNT(*) FROM events WHERE event_id = 1;` is faster too.",
        "Usa o `git stash` antes de trocar de branch! E sempre usa o `git stash` antes de trocar "
        "de branch.",
    ],
)
def test_a_sentence_said_again_with_a_word_or_two_added_is_a_loop(reply):
    assert P.degenerate_kind(reply, "which is faster?", RULE, repetition_value=1.0) == "loop"


def test_a_sentence_taken_up_again_and_carried_further_is_not_a_loop():
    reply = (
        "`git status` shows what changed. `git status` shows what changed since your last commit."
    )
    assert P.degenerate_kind(reply, "what changed?", RULE, repetition_value=1.0) is None


@pytest.mark.parametrize(
    "reply",
    [
        "Yes. Yes. Take the day off.",  # a short sentence said twice is emphasis
        "Run `make test`. Then run `make test` again with `CI=true`.",  # same words, a new sentence
        "Bora: `git stash`. Depois, `git stash pop`. Pronto, `git stash` e `git stash pop`.",
    ],
)
def test_repeating_words_or_a_short_sentence_is_not_a_loop(reply):
    assert P.degenerate_kind(reply, "how do I do it?", RULE, repetition_value=1.0) is None


def test_code_tokens_count_as_words_of_a_reply():
    assert P.reply_length("Run `git reset --soft HEAD~1` now.") == 6


@pytest.fixture(scope="module")
def lang_id():
    return LanguageIdentifier()


@pytest.mark.parametrize(
    "reply",
    [
        "`def total(prices): return sum(prices)`.",
        "Roda `make test`. Depois `make lint`. Pronto.",
        "Usa `kubectl get pods -A` pra ver tudo, e `kubectl describe pod x` pro detalhe.",
    ],
)
def test_portuguese_around_code_is_not_another_language(lang_id, reply):
    assert lang_id.share(reply, "pt", ("en", "pt")) == 1.0


@pytest.mark.parametrize(
    "reply",
    [
        "GitHub Actions se o código tá no GitHub, GitLab CI se tá no GitLab.",
        "AWS Lambda cobra por invocação e por tempo de execução, não por servidor.",
    ],
)
def test_names_are_in_no_language(lang_id, reply):
    assert lang_id.share(reply, "pt", ("en", "pt")) == 1.0


def test_identifiers_outside_backticks_are_in_no_language(lang_id):
    reply = "Ship an App Bundle and set `abiFilters` to arm64-v8a and armeabi-v7a."
    assert lang_id.share(reply, "en", ("en", "pt")) == 1.0  # read as Italian with them
    reply_pt = (
        "Gera um App Bundle e põe `abiFilters` com arm64-v8a e armeabi-v7a, assim a loja entrega "
        "só a biblioteca certa pra cada celular."
    )
    assert lang_id.share(reply_pt, "en", ("en", "pt")) == 0.0  # still Portuguese, not English


def test_prose_that_is_mostly_names_is_judged_whole(lang_id):
    loop = 'Alejandro: "Alejandro: "Alejandro: "Alejandro: "Alejandro: "Alejandro: "Alejandro: "'
    assert lang_id.share(loop * 2, "pt", ("en", "pt")) == 0.0


def test_english_around_names_is_still_english(lang_id):
    reply = "Use GitHub Actions if the code lives on GitHub, and GitLab CI if it lives on GitLab."
    assert lang_id.share(reply, "pt", ("en", "pt")) == 0.0
    assert lang_id.detect(reply) == "en"


def test_a_whole_reply_in_another_language_is_still_wrong(lang_id):
    reply = (
        "Use a context manager so the file is always closed, "
        "even when an exception is raised inside the block."
    )
    assert lang_id.share(reply, "pt", ("en", "pt")) == 0.0


def test_a_reference_without_specifics_gives_no_topical_evidence():
    anchor = TopicalAnchor(low=0.2, high=0.6, fitted_on="test")
    assert anchor.gate(0.0, None, key_terms=MIN_KEY_TERMS - 1) == 1.0
    assert (
        anchor.gate(0.0, -0.1, key_terms=MIN_KEY_TERMS - 1) == 0.0
    )  # closer to another answer: still cut
    assert anchor.gate(0.0, None, key_terms=MIN_KEY_TERMS) == 0.0


# ---------------------------------------------------------------- does it answer this prompt?


def test_the_retrieval_verdict_needs_both_its_parts():
    import numpy as np

    from molting.metrics.topicality import answers_prompt

    assert answers_prompt(0.85, 0.84, np.array([0.80, 0.83]))
    assert answers_prompt(0.85, 0.85, np.array([]))  # the reference itself; no other question
    assert not answers_prompt(0.85, 0.86, np.array([0.80]))  # less relevant than the reference
    assert not answers_prompt(0.85, 0.80, np.array([0.80, 0.86]))  # answers another question
    assert not answers_prompt(0.85, 0.80, np.array([0.85]))  # a tie is no evidence


def test_an_open_question_has_no_code_in_the_prompt_or_the_reference():
    from molting.metrics.topicality import open_question

    assert open_question("você tem algum hobby?", "Tenho! Surfo mal, mas com convicção.")
    assert not open_question("Refactor: `def f(x): return x`", "Use a lambda.")
    assert not open_question("How do I list files?", "`ls -la`, or `tree` for depth.")
    assert not open_question("How do I list files?", "Run:\n```\nls -la\n```")


def test_a_cut_reply_to_a_code_question_is_not_read_again(claudio, claudio_scorer):
    """Sharing the reference's commands and code is the evidence there: an on-subject wrong
    answer (the demo base model's, to ev-en-001) stays cut."""
    p = next(p for p in claudio.eval_prompts() if p.id == "ev-en-001")
    s = claudio_scorer.score_reply(
        p,
        "To fix this bug, you need to remove the `key` parameter from the `startswith` method: "
        "`def delete_key_from_dict(settings, key): del settings[key]`.",
    )
    assert s.parts["topical"] < 1 and s.parts["answers_prompt"] is None, s.parts


def test_the_retriever_is_multilingual_and_gives_the_same_bytes_in_any_batch(tmp_path):
    from molting.metrics.embeddings import Retriever

    r = Retriever(cache=tmp_path / "r.sqlite")
    q = r.questions(["você tem algum hobby fora da programação?", "how do I undo a git commit?"])
    texts = [
        "Tenho sim: surfo mal e cozinho bem, feijoada todo sábado.",
        "Use `git reset --soft HEAD~1`: the commit goes, the changes stay staged.",
    ]
    a = r.answers(texts)
    assert a.shape == (2, 384) and (a @ q.T).argmax(1).tolist() == [0, 1]
    fresh = Retriever(cache=False)
    assert fresh.answers(texts[::-1])[::-1].tobytes() == a.tobytes()
    assert Retriever(cache=tmp_path / "r.sqlite").answers(texts).tobytes() == a.tobytes()


@pytest.fixture(scope="module")
def small_talk(claudio, claudio_scorer):
    by_id = {p.id: p for p in claudio.eval_prompts()}
    rows = [(by_id[i], reply) for i, reply in ON_TOPIC + OFF_TOPIC]
    return claudio_scorer.score([p for p, _ in rows], [r for _, r in rows])


# Replies to the bundle's small-talk prompts, in voice: an answer that shares few of the
# reference's specifics (the reference tells of the light over the bay in Floripa) and is closer
# to the persona's answer about coffee, and answers to a neighbouring question in the same voice.
# The lexical measures cut them all; the retrieval model gives the first back.
ON_TOPIC = [
    (
        "ev-en-013",
        "Morning, definitely. I do my deep work before lunch while Slack is quiet, and every "
        "bug I've written after midnight came back to haunt me. And you?",
    ),
]
OFF_TOPIC = [
    (
        "ev-en-013",
        "Coffee, always: a strong cafezinho before standup and never a third cup after 3 p.m.",
    ),
    (
        "ev-en-013",
        "Seven hours, minimum. I learned the hard way that a tired brain writes bugs that a "
        "rested one has to fix the next morning.",
    ),
    (
        "ev-pt-015",
        "Bloqueia na agenda como reunião, terça e quinta às 18h30. Se ficar pra quando sobrar "
        "tempo, não sobra.",
    ),
    (
        "ev-en-014",
        "I tried building one once: a Pong clone in Pygame that ate a whole holiday. Game dev "
        "is hard, everything runs sixty times a second.",
    ),
]


def test_small_talk_answered_in_voice_is_on_topic(small_talk):
    for s in small_talk[: len(ON_TOPIC)]:
        assert s.parts["answers_prompt"] is True, s.parts  # asked: the lexical measures cut it
        assert s.parts["topical"] == 1.0 and "off_topic" not in s.gates, s.parts


def test_an_answer_to_a_neighbouring_question_stays_off_topic(small_talk):
    for s in small_talk[len(ON_TOPIC) :]:
        assert s.parts["answers_prompt"] is False and "off_topic" in s.gates, s.parts


def test_a_reply_another_hard_gate_zeroes_is_not_read_again(claudio, claudio_scorer):
    p = next(p for p in claudio.eval_prompts() if p.id == "ev-en-013")
    s = claudio_scorer.score_reply(p, "Morning, definitely. I do my deep")  # cut mid-sentence
    assert s.parts["degenerate"] == "fragment" and s.parts["topical"] < 1, s.parts
    assert s.parts["answers_prompt"] is None, s.parts


def test_the_trade_off_says_where_any_pass_line_would_have_to_sit():
    from conftest import load_script

    trade_off = load_script("bench/bench_validity.py").trade_off
    # nine own replies at 9, one at 1; nine other voices at 1, one at 9.5: the line at 9 lets one
    # other voice in ten through and keeps nine own replies in ten
    own, other = [9.0] * 9 + [1.0], [1.0] * 9 + [9.5]
    assert trade_off(own, other) == {"own_at_other_max": 0.9, "other_at_own_min": 0.1}
    # told apart: every line between them meets both targets
    assert trade_off([9.0] * 5, [1.0] * 5) == {"own_at_other_max": 1.0, "other_at_own_min": 0.0}
    # the other voices score higher: no line keeps them out without failing every own reply
    assert trade_off([1.0] * 5, [9.0] * 5) == {"own_at_other_max": 0.0, "other_at_own_min": 1.0}
