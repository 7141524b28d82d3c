"""`molting persona init`: a bundle from the raw dataset alone, or a clear refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import CLAUDIO, TEST_DATA
from molting.cli import main
from molting.data import Conversation, Turn, load_dataset
from molting.io import read_jsonl, sha256_file
from molting.metrics.language import LanguageIdentifier, text_language
from molting.metrics.text import NearDuplicates
from molting.persona import load_persona
from molting.persona_init import (
    InitOptions,
    Refusal,
    held_out_prompt,
    init_bundle,
    split_conversations,
)


def test_language_comes_from_what_people_wrote_not_the_system_prompt():
    turns = [
        (
            "system",
            (
                "You are a helpful assistant. "
                "Answer in the language of the user, in a friendly tone, always."
            ),
        ),
        ("user", "oi, tudo bem?"),
        ("assistant", "Tudo ótimo! E você?"),
    ]
    conv = Conversation(0, "0", tuple(Turn(r, c) for r, c in turns))
    lang = text_language(
        [t.content for t in conv.turns if t.role != "system"], LanguageIdentifier(), ("en", "pt")
    )
    assert lang == "pt"


def test_a_held_out_prompt_carries_the_conversation_so_far():
    turns = [
        ("system", "Be brief."),
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
        ("assistant", "a2"),
    ]
    p = held_out_prompt(Conversation(0, "c7", tuple(Turn(r, c) for r, c in turns)), "en")
    assert (p.id, p.system, p.prompt, p.reference) == ("c7", "Be brief.", "q2", "a2")
    assert p.history == (("user", "q1"), ("assistant", "a1"))


def _convs(n: int, filler: set[int]) -> list[Conversation]:
    def reply(i):
        opening = "Great question! There are several factors to consider. " if i in filler else ""
        return f"{opening}Use option {i}: it is the one that fits."

    return [
        Conversation(
            i,
            f"c{i}",
            (Turn("user", f"question number {i} about topic {i}"), Turn("assistant", reply(i))),
        )
        for i in range(n)
    ]


def test_a_reply_that_opens_with_filler_is_never_a_reference_and_moves_nothing_else():
    langs = {f"c{i}": "en" for i in range(60)}
    opts = InitOptions(dataset=Path("d.json"), card=Path("c.yaml"), eval_n=8, calibration_n=8)
    clean = split_conversations(_convs(60, set()), langs, ("en",), opts)
    held = [c.id for c in clean.calibration + clean.eval]
    filler = {int(held[0][1:]), int(held[-1][1:])}
    split = split_conversations(_convs(60, filler), langs, ("en",), opts)
    assert [c.id for c in split.calibration + split.eval] == held[1:-1]
    assert {f"c{i}" for i in filler} <= {c.id for c in split.train}


def test_a_small_persona_is_refused_with_what_is_missing(tmp_path, capsys):
    """Helena's raw set: 72 conversations, 50 clean — too few per language for three splits."""
    code = main(
        [
            "persona",
            "init",
            str(tmp_path / "helena"),
            "--dataset",
            str(TEST_DATA / "helena/dataset.json"),
            "--card",
            str(TEST_DATA / "helena/persona.yaml"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1, err
    assert (
        "too little data" in err and "need at least 32" in err and "add " in err and "more" in err
    )
    assert not (tmp_path / "helena").exists() and not list(tmp_path.iterdir())  # nothing half-built


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The raw Cláudio dataset alone → a bundle (without base-model replies, to keep the test
    fast)."""
    root = tmp_path_factory.mktemp("init")
    raw = root / "raw.json"
    shutil.copy(CLAUDIO / "dataset_sharegpt.json", raw)
    card = root / "card.yaml"
    shutil.copy(CLAUDIO / "persona.yaml", card)
    # Cláudio's voice is near the line that separates it from other voices (held-out AUC ≈ 0.8):
    # accepted here so the test does not hang on which side a float falls; the refusal has its
    # own test
    opts = InitOptions(dataset=raw, card=card, generic_from_base=False, accept_weak_voice=True)
    lines: list[str] = []
    result = init_bundle(root / "bundle", opts, progress=lines.append)
    return root, opts, result, lines


def test_a_voice_the_metric_cannot_tell_from_other_voices_is_refused_unless_accepted(
    built, monkeypatch
):
    """The refusal logic on the built bundle's calibration, with the bar set out of reach (no
    float near a line)."""
    import molting.persona_init as PI
    from molting.metrics.calibration import calibrate

    _, _, result, _ = built
    r = calibrate(load_persona(result.bundle), 8.5, write_anchors=False)
    monkeypatch.setattr(PI, "MIN_VOICE_AUC", 1.01)
    with pytest.raises(
        Refusal,
        match=(
            "cannot be told apart from other voices.*negatives/impostor.jsonl.*--accept-weak-voice"
        ),
    ):
        PI.judge_validity(r, 8.5, lambda s: None, accept_weak_voice=False)
    lines: list[str] = []
    validity = PI.judge_validity(r, 8.5, lines.append, accept_weak_voice=True)
    assert validity["weak_voice_accepted"] == ["en", "pt"] and any(
        "NOT TOLD APART" in line for line in lines
    )


def test_init_builds_a_calibrated_bundle_from_the_raw_dataset_alone(built):
    root, _, result, lines = built
    persona = load_persona(result.bundle)
    assert (result.bundle / "anchors.json").is_file() and (
        result.bundle / "METRICS_CALIBRATION.md"
    ).is_file()
    assert (result.bundle / "curation/CURATION_REPORT.md").is_file() and (
        result.bundle / "negatives/agent.jsonl"
    ).is_file()
    assert [line[:5] for line in lines if line.startswith("[")] == [
        "[1/5]",
        "[2/5]",
        "[3/5]",
        "[4/5]",
        "[5/5]",
    ]
    assert (
        result.counts["curated"] == 153
        and result.counts["train"]
        + result.counts["calibration"]
        + result.counts["eval"]
        + result.counts["dropped_near_duplicates"]
        == 153
    )
    assert all(v >= 0.85 for v in result.validity["auc_vs_generic"].values())
    from molting.metrics import Scorer

    Scorer.load(persona)  # the anchors fit the bundle


def test_the_splits_are_by_conversation_and_share_no_prompt(built):
    _, _, result, _ = built
    persona = load_persona(result.bundle)
    train_users = [
        t.content
        for c in load_dataset(persona.dataset).conversations
        for t in c.turns
        if t.role == "user"
    ]
    ev, cal = persona.eval_prompts(), persona.calibration_prompts()
    assert {p.lang for p in ev} == {"en", "pt"} and {p.lang for p in cal} == {"en", "pt"}
    held = NearDuplicates([p.prompt for p in ev + cal])
    assert not [u for u in train_users if held.find(u)]
    assert not NearDuplicates([p.prompt for p in ev]).find(cal[0].prompt)
    assert not {p.id for p in ev} & {p.id for p in cal}


def test_the_bundle_keeps_the_raw_training_set_with_no_held_out_conversation(built):
    _, _, result, _ = built
    persona = load_persona(result.bundle)
    assert persona.raw_dataset == result.bundle / "raw_dataset.json"
    raw = load_dataset(persona.raw_dataset).conversations
    train = load_dataset(persona.dataset).conversations
    assert (
        len(raw) == result.counts["raw_train"] > len(train)
    )  # the agent talk curation removes is still there
    held = NearDuplicates(
        [p.prompt for p in persona.eval_prompts() + persona.calibration_prompts()]
    )
    assert not [t for c in raw for t in c.turns if t.role == "user" and held.find(t.content)]
    init = json.loads((result.bundle / "init.json").read_text(encoding="utf-8"))
    assert init["raw_dataset"] == {
        "file": "raw_dataset.json",
        "sha256": sha256_file(persona.raw_dataset),
    }


def test_re_running_with_the_same_inputs_reuses_the_bundle(built):
    root, opts, result, _ = built
    before = {p.name: p.read_bytes() for p in result.bundle.rglob("*") if p.is_file()}
    again = init_bundle(root / "bundle", opts, progress=lambda s: None)
    assert again.reused and before == {
        p.name: p.read_bytes() for p in result.bundle.rglob("*") if p.is_file()
    }


def test_other_inputs_need_overwrite_and_inputs_are_never_inside_the_bundle(built):
    root, opts, result, _ = built
    from dataclasses import replace

    from molting.errors import OutputError

    with pytest.raises(OutputError, match="--overwrite"):
        init_bundle(root / "bundle", replace(opts, seed=7), progress=lambda s: None)
    with pytest.raises(OutputError, match="holds the input"):
        init_bundle(root, opts, progress=lambda s: None)


def test_user_written_eval_prompts_take_precedence(tmp_path):
    raw = tmp_path / "raw.json"
    shutil.copy(CLAUDIO / "dataset_sharegpt.json", raw)
    rows = [
        json.loads(x)
        for x in (CLAUDIO / "eval_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    ][:3]
    mine = tmp_path / "mine.jsonl"
    mine.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    with pytest.raises(Refusal, match="user-written eval prompts, need at least 6"):
        init_bundle(
            tmp_path / "b",
            InitOptions(
                dataset=raw,
                card=CLAUDIO / "persona.yaml",
                eval_prompts=mine,
                generic_from_base=False,
            ),
            progress=lambda s: None,
        )


def test_overwrite_swaps_the_new_bundle_in_and_removes_only_the_old_one(tmp_path):
    """The swap behind --overwrite: the old bundle (only files init.json lists) goes once the new
    one is in place; a folder of the user's named like molting's swap folder is never touched."""
    from molting.persona_init import _swap

    old = tmp_path / "b"
    (old / "negatives").mkdir(parents=True)
    (old / "persona.yaml").write_text("old card")
    (old / "negatives/agent.jsonl").write_text("old")
    (old / "init.json").write_text(
        json.dumps({"inputs": "x", "files": ["negatives/agent.jsonl", "persona.yaml"]})
    )
    stage = tmp_path / ".b.init-1234"
    stage.mkdir()
    (stage / "persona.yaml").write_text("new card")
    (tmp_path / ".b.old").mkdir()
    (tmp_path / ".b.old/mine.txt").write_text("mine")
    _swap(stage, old)
    assert (old / "persona.yaml").read_text() == "new card" and not (old / "negatives").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.old", "b"]
    assert (tmp_path / ".b.old/mine.txt").read_text() == "mine"


# ------------------------------------------ hard gates, from both sides, on a persona-init bundle

CORRECT = ("in_voice_one", "in_voice_none", "terse")


# Correct replies the off-topic gate zeroes, measured on each persona-init bundle: short
# follow-up and small-talk answers judged against a single reference (target ≤ 1 in 50). Scorer
# 2026.12.7.13 asks a multilingual retrieval model too (topicality's docstring): 5 → 4 of Marina's
# 222 and 7 → 6 of Renata's 102
OFF_TOPIC_ZEROED = {"marina": 4, "renata": 6}


@pytest.fixture(
    scope="module",
    # Renata's build and checks run with the slow tests (`make test-slow`, which CI runs too)
    params=["marina", pytest.param("renata", marks=pytest.mark.slow)],
)
def built_from_raw(request, tmp_path_factory):
    """A persona's bundle (Marina, Renata), built by persona init alone from the raw dataset and
    card (no base-model replies, to keep the test fast: the split, and so the held-out prompts,
    are the same), and the replies new authors wrote to its held-out prompts in voice or tersely
    (correct answers)."""
    from molting.metrics import Scorer

    src = TEST_DATA / request.param
    opts = InitOptions(
        dataset=src / "raw.json",
        card=src / "persona.yaml",
        generic_from_base=False,
        accept_weak_voice=True,
    )
    bundle = init_bundle(
        tmp_path_factory.mktemp(request.param) / "bundle", opts, progress=lambda s: None
    ).bundle
    persona = load_persona(bundle)
    by_id = {p.id: p for p in persona.eval_prompts() + persona.calibration_prompts()}
    rows = [
        (by_id[r["prompt_id"]], r["reply"])
        for f in sorted((src / "validation").glob("*.jsonl"))
        for r in read_jsonl(f)
        if r["category"] in CORRECT and r["prompt_id"] in by_id
    ]
    return request.param, Scorer.load(persona), rows


def test_hard_gates_spare_new_authors_correct_replies_on_a_persona_init_bundle(built_from_raw):
    """Target: ≤ 1 in 50 of the persona's own correct replies zeroed. No fragment, echo, loop or
    wrong-language gate zeroes one (measured: 0 of Marina's 222, 0 of Renata's 102); the
    off-topic gate zeroes OFF_TOPIC_ZEROED, held at that level."""
    name, scorer, rows = built_from_raw
    scores = scorer.score([p for p, _ in rows], [r for _, r in rows])
    assert len(rows) >= 100
    hard = [s for s in scores if {"degenerate", "wrong_language"} & set(s.gates)]
    assert not hard, [(s.id, s.gates, s.parts["degenerate"]) for s in hard]
    zeroed = [s for s in scores if s.personality == 0.0]
    assert len(zeroed) <= OFF_TOPIC_ZEROED[name], zeroed
    assert all(s.gates == ("off_topic",) for s in zeroed), zeroed


def _made_degenerate(kind: str, rows: list) -> list:
    """The same correct replies made into what each hard gate is for."""
    from molting.metrics.language import SHORT_PROSE_WORDS, without_names
    from molting.metrics.personality import REPEATED_SENTENCE_MIN, reply_length
    from molting.metrics.text import sentences, strip_code, words

    if kind == "fragment":  # cut after three words, mid-sentence or before the announced code
        cut = [(p, " ".join(r.split()[:3])) for p, r in rows if "`" not in " ".join(r.split()[:3])]
        return [(p, c) for p, c in cut if c[-1] not in ".!?…)]\"'”»"]
    if kind == "echo":  # the prompt said back
        return [(p, p.prompt) for p, _ in rows]
    if kind == "loop":  # the longest sentence said once more, on a line of its own
        out = []
        for p, r in rows:
            longest = max(sentences(r), key=len)
            if reply_length(longest) >= REPEATED_SENTENCE_MIN:
                out.append((p, f"{r}\n{longest}"))
        return out
    if kind == "wrong_language":  # an English reply to a Portuguese prompt, with prose enough to
        # judge once names and code are out (shorter prose abstains unless the detector is
        # confident: SHORT_PROSE_WORDS)
        english = [
            r
            for p, r in rows
            if p.lang == "en" and len(words(without_names(strip_code(r)))) >= SHORT_PROSE_WORDS
        ]
        pt = [p for p, _ in rows if p.lang == "pt"]
        return [(p, english[i % len(english)]) for i, p in enumerate(pt)]
    # off_topic: each reply given to the prompt half the language's prompts away
    out = []
    for lang in ("en", "pt"):
        items = [(p, r) for p, r in rows if p.lang == lang]
        ids = sorted({p.id for p, _ in items})
        first = {p.id: p for p, _ in items}
        for p, r in items:
            out.append((first[ids[(ids.index(p.id) + len(ids) // 2) % len(ids)]], r))
    return out


@pytest.mark.parametrize("kind", ["fragment", "echo", "loop", "wrong_language", "off_topic"])
def test_hard_gates_zero_the_same_replies_made_degenerate(built_from_raw, kind):
    """Measured on Marina's bundle: every made-degenerate reply is gated and zeroed (fragment
    125, echo 222, loop 220, wrong language 108); the off-topic gate, a graded one, gates all 222
    and zeroes 220, and is asked for 95%. Renata's: fragment 91, echo 102, loop 102, wrong
    language 51, off topic 101 of 102 gated."""
    _, scorer, rows = built_from_raw
    made = _made_degenerate(kind, rows)
    assert len(made) >= 30
    scores = scorer.score([p for p, _ in made], [r for _, r in made])
    gate = "degenerate" if kind in ("fragment", "echo", "loop") else kind
    gated = [s for s in scores if gate in s.gates]
    if kind == "off_topic":
        assert len(gated) >= 0.95 * len(made), (len(gated), len(made))
    else:
        missed = [(s.id, s.gates, s.parts["degenerate"]) for s in scores if s not in gated]
        assert not missed and all(s.personality == 0.0 for s in scores), missed
