"""The persona bundle: one directory holding everything molting knows about a persona.

    DIR/persona.yaml        the card: name, languages, signature expressions, never-list, …
    DIR/dataset.json        the persona's conversations (raw or curated; any format molting reads)
    DIR/raw_dataset.json    optional: the raw conversations before curation (`persona init`
                            keeps them)
    DIR/eval_prompts.jsonl  held-out prompts with the persona's own reply as reference
    DIR/calibration.jsonl   more held-out prompts: fit the metric's anchors, nothing else
    DIR/negatives/          optional: generic.jsonl, agent.jsonl ({"lang", "reply"}) written by hand
    DIR/criteria.yaml       optional: overrides of the gate's success criteria
    DIR/anchors.json        written by `molting calibrate --persona DIR`

File names can be changed in the card's `files:` mapping. `load_persona(DIR)` validates the
whole bundle at once and raises one ConfigError per problem found first; the loaded `Persona`
is passed down to every stage, which never reads a fixed path.

    >>> persona = load_persona("my-persona")
    >>> persona.card.signatures["pt"][:2], len(persona.eval_prompts())
"""

from __future__ import annotations

import difflib
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from molting.errors import ConfigError, MoltingWarning
from molting.io import check_keys, read_jsonl, read_yaml_mapping, sha256_file
from molting.text.normalize import normalize

CARD_FILE = "persona.yaml"
# Languages molting can judge: "pt" is Brazilian Portuguese (the fluency metric checks for it).
SUPPORTED = ("en", "pt")
_LANG_ALIASES = {
    "en": "en",
    "en-us": "en",
    "en-gb": "en",
    "english": "en",
    "pt": "pt",
    "pt-br": "pt",
    "pt_br": "pt",
    "portuguese": "pt",
    "brazilian portuguese": "pt",
}
DEFAULT_FILES = {
    "dataset": "dataset.json",
    # optional: the raw conversations before curation, held-out ones removed
    "raw_dataset": "raw_dataset.json",
    "eval": "eval_prompts.jsonl",
    "calibration": "calibration.jsonl",
    "negatives": "negatives",
    "criteria": "criteria.yaml",
    "anchors": "anchors.json",
}
# a card key this few edits (letters added, dropped, changed or swapped) from a known one is a typo:
# "nmae", "sumary", "language"; from 6 letters on, two edits ("signature_expresion"). "notes" is
# not.
TYPO_EDITS_SHORT, TYPO_EDITS = 1, 2
CARD_KEYS = (
    "name",
    "summary",
    "origin",
    "languages",
    "voice",
    "signature_expressions",
    "never",
    "examples",
    "system_prompt",
    "canary_prompt",
    "files",
)
PROMPT_KEYS = (
    "id",
    "lang",
    "prompt",
    "reference",
    "category",
    "system",
    "history",
    "generic",
    "agent_like",
    "european_pt",
    "off_topic",
    "in_voice",
)  # optional hand-written replies
# Optional replies per prompt, written by hand: negatives (generic, agent talk, European Portuguese,
# a good reply to a neighbouring question) and a second on-topic reply in the persona's voice.
NEGATIVE_KINDS = ("generic", "agent_like", "european_pt", "off_topic", "in_voice")
HISTORY_ROLES = ("user", "assistant")


def normalize_lang(value: Any, where: str) -> str:
    """'en' or 'pt' for the language codes molting supports; anything else is a ConfigError."""
    code = str(value).strip().lower().replace("_", "-") if isinstance(value, str) else ""
    if code in _LANG_ALIASES:
        return _LANG_ALIASES[code]
    if code in ("pt-pt", "pt-eu"):
        raise ConfigError(
            f"{where}: language {value!r}: European Portuguese is not supported (molting's "
            "Portuguese metrics check for Brazilian Portuguese); use 'pt-BR'."
        )
    raise ConfigError(f"{where}: language {value!r} is not supported; use 'en' or 'pt-BR'.")


@dataclass(frozen=True)
class Prompt:
    """One held-out prompt: what the user says (after `history`), in `lang`, and the persona's
    reply."""

    id: str
    lang: str  # "en" | "pt"
    prompt: str
    reference: str
    category: str | None = None
    system: str | None = None
    history: tuple[tuple[str, str], ...] = ()  # (role, text) turns before the prompt
    negatives: Mapping[str, str] = field(
        default_factory=dict
    )  # hand-written: generic, agent_like, european_pt

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "lang": self.lang,
            "prompt": self.prompt,
            "reference": self.reference,
        }
        if self.category:
            out["category"] = self.category
        if self.system:
            out["system"] = self.system
        if self.history:
            out["history"] = [{"role": r, "content": c} for r, c in self.history]
        return out | dict(self.negatives)

    def messages(self) -> list[dict[str, str]]:
        """Chat messages up to and including the prompt (system, history, user)."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        out += [{"role": r, "content": c} for r, c in self.history]
        return out + [{"role": "user", "content": self.prompt}]


def prompt_from_dict(
    row: dict[str, Any], where: str, languages: tuple[str, ...] = SUPPORTED
) -> Prompt:
    check_keys(row, PROMPT_KEYS, where)
    for key in ("id", "lang", "prompt", "reference"):
        if key not in row:
            raise ConfigError(
                f"{where}: missing '{key}' (each prompt needs id, lang, prompt and reference)."
            )
    pid = row["id"]
    if not isinstance(pid, (str, int)) or isinstance(pid, bool) or not str(pid).strip():
        raise ConfigError(f"{where}: 'id' must be a non-empty string.")
    lang = normalize_lang(row["lang"], f"{where} (id {pid})")
    if lang not in languages:
        raise ConfigError(
            f"{where} (id {pid}): language '{row['lang']}' is not one of the persona's languages "
            f"({', '.join(languages)}); add it to the card or drop the prompt."
        )
    for key in ("prompt", "reference"):
        if not isinstance(row[key], str) or not row[key].strip():
            raise ConfigError(f"{where} (id {pid}): '{key}' must be non-empty text.")
    negatives = {
        k: row[k] for k in NEGATIVE_KINDS if isinstance(row.get(k), str) and row[k].strip()
    }
    return Prompt(
        id=str(pid),
        lang=lang,
        prompt=row["prompt"],
        reference=row["reference"],
        category=row.get("category") or None,
        system=row.get("system") or None,
        history=_history(row.get("history"), f"{where} (id {pid})"),
        negatives=negatives,
    )


def _history(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw in (None, []):
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: 'history' must be a list of {{role, content}} turns.")
    turns = []
    for j, t in enumerate(raw):
        if (
            not isinstance(t, dict)
            or t.get("role") not in HISTORY_ROLES
            or not isinstance(t.get("content"), str)
        ):
            raise ConfigError(
                f"{where}: history turn {j} must be {{'role': 'user'|'assistant', 'content': "
                "text}."
            )
        turns.append((t["role"], t["content"]))
    return tuple(turns)


def load_prompts(path: str | Path, languages: tuple[str, ...] = SUPPORTED) -> list[Prompt]:
    """Prompts of a JSONL file, validated: ids unique, languages supported, no empty set."""
    path = Path(path)
    rows = read_jsonl(path, "prompt file")
    prompts, seen = [], {}
    for n, row in enumerate(rows, start=1):
        p = prompt_from_dict(row, f"{path}: prompt {n}", languages)
        if p.id in seen:
            raise ConfigError(
                f"{path}: prompt {n}: id {p.id!r} is also prompt {seen[p.id]}; ids must be unique."
            )
        seen[p.id] = n
        prompts.append(p)
    if not prompts:
        raise ConfigError(f"{path}: no prompts; an empty eval set never passes.")
    return prompts


@dataclass(frozen=True)
class Card:
    name: str
    languages: tuple[str, ...]  # normalized: "en", "pt"
    signatures: Mapping[str, tuple[str, ...]]  # language → signature expressions
    never: tuple[str, ...] = ()
    summary: str = ""
    voice: str = ""  # the card's voice rules as plain text (for an LLM judge's rubric)
    system_prompt: str | None = None
    canary_prompt: str | None = None
    examples: tuple[tuple[str, str], ...] = ()  # (user, reply)

    def all_signatures(self) -> list[str]:
        return [s for lang in self.languages for s in self.signatures.get(lang, ())]


def card_from_dict(raw: dict[str, Any], where: str) -> Card:
    _check_card_keys(raw, where)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: 'name' must be the persona's name (non-empty text).")
    langs_raw = raw.get("languages")
    if not isinstance(langs_raw, list) or not langs_raw:
        raise ConfigError(f"{where}: 'languages' must be a non-empty list, e.g. [en, pt-BR].")
    languages = tuple(dict.fromkeys(normalize_lang(x, f"{where}: languages") for x in langs_raw))
    return Card(
        name=name.strip(),
        languages=languages,
        signatures=_signatures(raw.get("signature_expressions"), languages, where),
        never=tuple(_str_list(raw.get("never", []), f"{where}: 'never'")),
        summary=_text(raw.get("summary", ""), f"{where}: 'summary'"),
        voice=_voice_text(raw.get("voice", ""), where),
        system_prompt=_optional_text(raw.get("system_prompt"), f"{where}: 'system_prompt'"),
        canary_prompt=_optional_text(raw.get("canary_prompt"), f"{where}: 'canary_prompt'"),
        examples=_examples(raw.get("examples", []), where),
    )


def _check_card_keys(raw: dict[str, Any], where: str) -> None:
    """A card is the user's prose: a key molting does not read is kept, with a warning, unless it
    looks like a typo of one it does read ("sumary"), which would silently lose that field."""
    for key in raw:
        if key in CARD_KEYS:
            continue
        typed = str(key).lower().replace("-", "_")
        typo = next(
            (
                k
                for k in CARD_KEYS
                if _edits(typed, k) <= (TYPO_EDITS if len(k) >= 6 else TYPO_EDITS_SHORT)
            ),
            None,
        )
        if typo:
            raise ConfigError(f"{where}: unknown key '{key}'. Did you mean '{typo}'?")
        close = difflib.get_close_matches(str(key), CARD_KEYS, n=1, cutoff=0.5)
        hint = (
            f"if it was meant as '{close[0]}', rename it"
            if close
            else f"the keys it reads: {', '.join(CARD_KEYS)}"
        )
        warnings.warn(
            f"{where}: molting does not read the key '{key}'; it stays in the card as written "
            f"({hint}).",
            MoltingWarning,
            stacklevel=2,
        )


def _edits(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb)))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def _signatures(raw: Any, languages: tuple[str, ...], where: str) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {lang: () for lang in languages}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: 'signature_expressions' must map a language to a list, e.g. {{en: [\"In "
            'short:"], pt-BR: ["Resumindo:"]}.'
        )
    out: dict[str, tuple[str, ...]] = {lang: () for lang in languages}
    for key, exprs in raw.items():
        lang = normalize_lang(key, f"{where}: signature_expressions")
        if lang not in languages:
            raise ConfigError(
                f"{where}: signature_expressions has '{key}', which is not in languages."
            )
        out[lang] = tuple(_str_list(exprs, f"{where}: signature_expressions.{key}"))
    return out


def _str_list(raw: Any, where: str) -> list[str]:
    if isinstance(
        raw, list
    ):  # "- Agent talk: preambles…" is a one-key mapping to YAML; it means the text
        raw = [_flat(x) for x in raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise ConfigError(f"{where} must be a list of non-empty strings.")
    return [x.strip() for x in raw]


def _flat(x: Any) -> Any:
    if isinstance(x, dict) and len(x) == 1:
        ((k, v),) = x.items()
        return f"{k}: {v}"
    return x


def _text(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{where} must be text.")
    return " ".join(raw.split())


def _optional_text(raw: Any, where: str) -> str | None:
    return None if raw is None else (_text(raw, where) or None)


def _voice_text(raw: Any, where: str) -> str:
    if isinstance(raw, dict):
        return " ".join(
            f"{k.replace('_', ' ')}: {' '.join(str(v).split())}" for k, v in raw.items()
        )
    return _text(raw, f"{where}: 'voice'")


def _examples(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: 'examples' must be a list of {{user, reply}}.")
    out = []
    for i, ex in enumerate(raw):
        if (
            not isinstance(ex, dict)
            or not isinstance(ex.get("user"), str)
            or not isinstance(ex.get("reply"), str)
        ):
            raise ConfigError(f"{where}: examples[{i}] must be {{user: text, reply: text}}.")
        out.append((ex["user"], ex["reply"]))
    return tuple(out)


@dataclass(frozen=True)
class Persona:
    """A loaded, validated bundle. Prompt files are read once, on first use."""

    root: Path
    card: Card
    files: Mapping[str, Path]  # role → path (see DEFAULT_FILES); optional ones may not exist

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def languages(self) -> tuple[str, ...]:
        return self.card.languages

    @property
    def dataset(self) -> Path:
        return self.files["dataset"]

    @property
    def raw_dataset(self) -> Path | None:
        """The raw training conversations (`persona init` keeps them), or None when the bundle has
        none."""
        p = self.files["raw_dataset"]
        return p if p.is_file() else None

    @property
    def anchors_path(self) -> Path:
        return self.files["anchors"]

    @property
    def criteria_path(self) -> Path | None:
        p = self.files["criteria"]
        return p if p.is_file() else None

    @cached_property
    def _prompts(self) -> dict[str, list[Prompt]]:
        return {
            split: load_prompts(self.files[split], self.languages)
            for split in ("eval", "calibration")
        }

    def eval_prompts(self) -> list[Prompt]:
        return self._prompts["eval"]

    def calibration_prompts(self) -> list[Prompt]:
        return self._prompts["calibration"]

    def negatives(self, kind: str) -> list[dict[str, str]]:
        """Hand-written negatives of one kind ("generic" or "agent"): [{"lang", "reply"}], [] if
        none."""
        path = self.files["negatives"] / f"{kind}.jsonl"
        if not path.is_file():
            return []
        rows = []
        for n, row in enumerate(read_jsonl(path, "negatives file"), start=1):
            reply = row.get("reply")
            if not isinstance(reply, str) or not reply.strip():
                raise ConfigError(f"{path}: line {n}: needs a non-empty 'reply'.")
            rows.append(
                {
                    "lang": normalize_lang(row.get("lang"), f"{path}: line {n}"),
                    "reply": reply,
                    "prompt": row.get("prompt") or "",
                }
            )
        return rows

    def negative_files(self) -> list[Path]:
        d = self.files["negatives"]
        return sorted(d.glob("*.jsonl")) if d.is_dir() else []

    def input_files(self) -> dict[str, Path]:
        """Every bundle file the metric and the stages read, by role: the card, the dataset, the
        calibration and eval prompts (which also decontaminate the training split), the negatives.
        What a command must never overwrite, and what the fingerprints hash."""
        files = {
            "card": self.root / CARD_FILE,
            "dataset": self.dataset,
            "calibration": self.files["calibration"],
            "eval": self.files["eval"],
        }
        return files | {f"negatives/{p.name}": p for p in self.negative_files()}

    def fingerprints(self) -> dict[str, str]:
        """sha256 (16 hex digits) of every bundle file the scorer is fitted on, and the patterns
        version."""
        from molting.text.patterns import PATTERNS_VERSION  # lazy: compiles the patterns, 270 ms

        out = {k: sha256_file(p)[:16] for k, p in self.input_files().items()}
        out["patterns_version"] = PATTERNS_VERSION
        return out

    def canary_prompt(self) -> Prompt:
        """The prompt the gate checks adapters on: the card's, else the first eval prompt."""
        if self.card.canary_prompt:
            return Prompt(
                id="canary", lang=self.languages[0], prompt=self.card.canary_prompt, reference=""
            )
        return self.eval_prompts()[0]


def load_persona(path: str | Path, *, need_prompts: bool = True) -> Persona:
    """Load and validate a bundle directory. `need_prompts`: also read both prompt files now."""
    root = Path(path)
    if not root.is_dir():
        hint = " (a persona is a directory holding persona.yaml)" if root.is_file() else ""
        raise ConfigError(
            f"{root}: persona bundle not found{hint}. Create one with `molting persona init`."
        )
    card_path = root / CARD_FILE
    if not card_path.is_file():
        raise ConfigError(
            f"{root}: no {CARD_FILE}; a persona bundle starts with its card (see README, 'Persona "
            "bundle')."
        )
    raw = read_yaml_mapping(card_path, "persona card")
    card = card_from_dict(raw, str(card_path))
    persona = Persona(root=root, card=card, files=_files(root, raw.get("files"), str(card_path)))
    if not persona.dataset.is_file():
        raise ConfigError(
            f"{persona.dataset}: the persona's dataset is missing; put the conversations there or "
            f"set files.dataset in {card_path}."
        )
    if need_prompts:
        for split in ("eval", "calibration"):
            if not persona.files[split].is_file():
                raise ConfigError(
                    f"{persona.files[split]}: the {split} prompts are missing; `molting persona "
                    f"init` writes them, or set files.{split} in {card_path}."
                )
        persona.eval_prompts(), persona.calibration_prompts()
    return persona


def _files(root: Path, raw: Any, where: str) -> dict[str, Path]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: 'files' must map a role to a file name, e.g. {{dataset: chats.json}}."
        )
    check_keys(raw, DEFAULT_FILES, f"{where}: files")
    out = {}
    for role, default in DEFAULT_FILES.items():
        value = raw.get(role, default)
        if (
            not isinstance(value, str)
            or not value.strip()
            or Path(value).is_absolute()
            or ".." in Path(value).parts
        ):
            raise ConfigError(
                f"{where}: files.{role} must be a relative path inside the bundle, got {value!r}."
            )
        out[role] = root / value
    return out


_SLUG = re.compile(r"[^a-z0-9]+")


def slug(name: str) -> str:
    """A file-name-safe form of the persona's name: 'Cláudio Souza' → 'claudio-souza'."""
    return _SLUG.sub("-", normalize(name)).strip("-") or "persona"


def parse_lang_shares(text: str | None, languages: tuple[str, ...]) -> dict[str, float] | None:
    """`--lang-share` (curate --rank, augment): "en=1,pt=3" → {"en": 0.25, "pt": 0.75}, weights
    made shares; languages left out get none; None or "" → None (the caller's default)."""
    if not text:
        return None
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        lang = normalize_lang(key, "--lang-share")
        if not sep or lang not in languages:
            raise ConfigError(
                f"--lang-share: {part!r} must be LANG=WEIGHT with LANG one of the persona's "
                f"languages ({', '.join(languages)}), e.g. en=1,pt=1."
            )
        try:
            weights[lang] = float(value)
        except ValueError:
            raise ConfigError(
                f"--lang-share: weight {value!r} of '{key}' is not a number."
            ) from None
        if not math.isfinite(weights[lang]) or weights[lang] < 0:
            raise ConfigError(
                f"--lang-share: weight of '{key}' must be a non-negative number, got {value!r}."
            )
    total = sum(weights.values())
    if total <= 0:
        raise ConfigError(
            "--lang-share: at least one language needs a positive weight, e.g. en=1,pt=1."
        )
    return {
        lang: weights.get(lang, 0.0) / total for lang in languages if weights.get(lang, 0.0) > 0
    }
