"""The persona bundle: loading and validation, and a second persona (Helena, written for the
tests) that keeps the scorer honest about "the persona is an input"."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import TEST_DATA
from molting.errors import ConfigError
from molting.metrics import Scorer
from molting.metrics.stats import paired_bootstrap
from molting.persona import load_persona, load_prompts, normalize_lang, slug

HELENA = TEST_DATA / "helena"


def _bundle(tmp_path: Path, card_edit=None, files: dict[str, str] | None = None) -> Path:
    d = tmp_path / "bundle"
    shutil.copytree(HELENA, d, ignore=shutil.ignore_patterns("anchors.json"))
    if card_edit:
        card = (d / "persona.yaml").read_text(encoding="utf-8")
        (d / "persona.yaml").write_text(card_edit(card), encoding="utf-8")
    for name, text in (files or {}).items():
        (d / name).write_text(text, encoding="utf-8")
    return d


def test_the_example_bundles_load(claudio):
    helena = load_persona(HELENA)
    assert claudio.languages == ("en", "pt") and helena.languages == ("en", "pt")
    assert (
        "Olha só:" in claudio.card.signatures["pt"] and "Em resumo:" in helena.card.signatures["pt"]
    )
    assert len(helena.eval_prompts()) == 30 and {p.lang for p in helena.eval_prompts()} == {
        "en",
        "pt",
    }
    assert set(claudio.fingerprints()) >= {
        "card",
        "dataset",
        "calibration",
        "eval",
        "patterns_version",
    }


@pytest.mark.parametrize(
    "value, lang", [("pt-BR", "pt"), ("pt_br", "pt"), ("PT", "pt"), ("en-US", "en"), ("en", "en")]
)
def test_language_codes_are_normalized(value, lang):
    assert normalize_lang(value, "x") == lang


@pytest.mark.parametrize(
    "value, message",
    [
        ("pt-PT", "European Portuguese is not supported"),
        ("fr", "not supported"),
        (3, "not supported"),
    ],
)
def test_unsupported_languages_are_refused(value, message):
    with pytest.raises(ConfigError, match=message):
        normalize_lang(value, "x")


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c.replace("name: Helena Duarte", "nmae: Helena Duarte"),
            "unknown key 'nmae'. Did you mean 'name'",
        ),
        (
            lambda c: c.replace("languages: [en, pt-BR]", "languages: [en, pt-PT]"),
            "European Portuguese",
        ),
        (
            lambda c: c.replace("languages: [en, pt-BR]", "languages: []"),
            "'languages' must be a non-empty list",
        ),
        (lambda c: c + "files:\n  dataset: ../../etc/passwd\n", "relative path inside the bundle"),
        (
            lambda c: c + "files:\n  eval: missing.jsonl\n",
            "missing.jsonl: the eval prompts are missing",
        ),
        (lambda c: c.replace("  pt: [", "  fr: ["), "language 'fr' is not supported"),
        (lambda c: c + ":\n", "invalid YAML"),
    ],
)
def test_a_broken_card_is_one_clear_error(tmp_path, edit, message):
    with pytest.raises(
        ConfigError, match=re.escape(message) if "[" not in message else message.replace("[", r"\[")
    ):
        load_persona(_bundle(tmp_path, edit))


def test_a_key_molting_does_not_read_is_kept_with_a_warning(tmp_path):
    """A card is the user's prose: an extra key loads, with one warning naming it (the CLI path,
    a whole calibration, is a slow fault case: calibrate-card-extra-key)."""
    from molting.errors import MoltingWarning

    note = "catchphrase_note: at most one catchphrase per reply\n"
    with pytest.warns(MoltingWarning, match="does not read the key 'catchphrase_note'; it stays"):
        persona = load_persona(_bundle(tmp_path, lambda c: c + note))
    assert persona.card.name == "Helena Duarte"


def test_prompt_files_are_validated(tmp_path):
    bad = tmp_path / "p.jsonl"
    rows = [
        {"id": "a", "lang": "pt-BR", "prompt": "oi", "reference": "Oi! Tudo bem?"},
        {"id": "a", "lang": "en", "prompt": "hi", "reference": "Hi."},
    ]
    bad.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="prompt 2: id 'a' is also prompt 1"):
        load_prompts(bad)
    bad.write_text(json.dumps({"id": "a", "lang": "en", "prompt": "hi"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="missing 'reference'"):
        load_prompts(bad)
    bad.write_text(
        json.dumps({"id": "a", "lang": "en", "prompt": "hi", "reference": "x", "lnag": 1}) + "\n"
    )
    with pytest.raises(ConfigError, match="unknown key 'lnag'. Did you mean 'lang'"):
        load_prompts(bad)
    assert load_prompts(bad.parent / "p.jsonl", ("en",)) if False else True
    bad.write_text(json.dumps({"id": "a", "lang": "pt", "prompt": "oi", "reference": "Oi."}) + "\n")
    with pytest.raises(ConfigError, match="not one of the persona's languages"):
        load_prompts(bad, ("en",))


def test_a_missing_bundle_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="molting persona init"):
        load_persona(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no persona.yaml"):
        load_persona(tmp_path / "empty")


def test_slug_is_file_name_safe():
    assert slug("Cláudio Souza") == "claudio-souza" and slug("???") == "persona"


@pytest.fixture(scope="module")
def helena_scorer():
    return Scorer.load(load_persona(HELENA))


def _swap(text: str, mine: tuple[str, ...], theirs: tuple[str, ...]) -> str:
    for i, phrase in enumerate(mine):
        text = re.sub(
            re.escape(phrase.rstrip(":,.!?")),
            theirs[i % len(theirs)].rstrip(":,.!?"),
            text,
            flags=re.I,
        )
    return text


@pytest.mark.parametrize("own, other", [("claudio", "helena"), ("helena", "claudio")])
def test_each_persona_prefers_its_own_replies_to_copies_with_the_other_personas_catchphrases(
    claudio, claudio_scorer, helena_scorer, own, other
):
    personas = {
        "claudio": (claudio, claudio_scorer),
        "helena": (helena_scorer.persona, helena_scorer),
    }
    (a, scorer), (b, _) = personas[own], personas[other]
    prompts = a.eval_prompts()
    swapped = [
        _swap(p.reference, a.card.signatures[p.lang], b.card.signatures[p.lang]) for p in prompts
    ]
    assert sum(s != p.reference for s, p in zip(swapped, prompts)) >= 10
    mine = scorer.score(prompts, [p.reference for p in prompts])
    theirs = scorer.score(prompts, swapped)
    iv = paired_bootstrap([s.personality for s in mine], [s.personality for s in theirs])
    assert iv.low > 0, iv


@pytest.mark.slow  # Helena's whole calibration (30 s cold): `make test-slow`, which CI runs
def test_the_second_persona_separates_its_voice_from_generic_and_agent_replies(
    helena_calibration,
):
    r = helena_calibration
    assert r.personality["reference"]["all"] >= 8.0
    assert all(v >= 0.9 for neg in ("generic", "agent") for v in r.auc[neg].values()), r.auc
    assert r.personality["generic"]["all"] <= 2.0 and r.personality["agent"]["all"] <= 1.0
